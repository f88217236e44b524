/* The map's basemap and theme: a live tile URL, MBTiles tiles (emtiles://), the offline vector
 * basemap (emtiles:// vector tiles drawn by map-vector.js), or the built-in fallback (a grid and
 * the borough names) so the map is never blank. Calm by design: the
 * basemap is muted grey (tiles are desaturated by CSS), a dark variant for night shifts.
 * Part of the operator console map; see ui/mapview.py for the Python side. */
(function () {
  'use strict';
  const EM = (window.EM = window.EM || {});

  // Neutral palettes: colour is reserved for alerts (map-layers.js).
  EM.palettes = {
    light: {
      ground: '#e9eaec', gridMinor: '#dcdee1', gridMajor: '#c9ccd1', gridText: '#8d929a',
      marker: '#7b8189', markerEdge: '#4d535b', stale: '#a3a8ae', trail: '#4f5965',
      select: '#1f2429', accuracy: '#5f6b78', text: '#2b3036', zone: '#5d6670',
    },
    dark: {
      ground: '#1c1f23', gridMinor: '#24282d', gridMajor: '#30353b', gridText: '#6c737c',
      marker: '#8a9199', markerEdge: '#3a4047', stale: '#646b73', trail: '#aab3bd',
      select: '#f1f3f5', accuracy: '#9aa7b4', text: '#dfe3e7', zone: '#8f99a4',
    },
  };
  EM.theme = 'light';
  EM.pal = function () { return EM.palettes[EM.theme] || EM.palettes.light; };

  // Grid spacing in degrees of latitude for a zoom level (about 3-6 lines per 256 px tile).
  function gridStep(zoom) {
    const steps = [10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005];
    const degPerTile = 360 / Math.pow(2, zoom);
    for (const s of steps) { if (degPerTile / s >= 2.5) return s; }
    return steps[steps.length - 1];
  }

  // The fallback ground: a canvas GridLayer painting a plain ground with a lat/lon graticule.
  const GroundLayer = L.GridLayer.extend({
    options: { pmIgnore: true, className: 'em-ground', updateWhenZooming: false },
    createTile: function (coords) {
      const tile = document.createElement('canvas');
      const size = this.getTileSize();
      tile.width = size.x; tile.height = size.y;
      const ctx = tile.getContext('2d');
      const pal = EM.pal();
      ctx.fillStyle = pal.ground;
      ctx.fillRect(0, 0, size.x, size.y);
      const map = this._map;
      const nw = map.unproject([coords.x * size.x, coords.y * size.y], coords.z);
      const se = map.unproject([(coords.x + 1) * size.x, (coords.y + 1) * size.y], coords.z);
      const step = gridStep(coords.z);
      const major = step * 5;
      const toPx = (lat, lon) => map.project([lat, lon], coords.z)
        .subtract([coords.x * size.x, coords.y * size.y]);
      const isMajor = (v) => Math.abs(v / major - Math.round(v / major)) < 1e-6;
      ctx.lineWidth = 1;
      ctx.font = '10px sans-serif';
      ctx.fillStyle = pal.gridText;
      for (let lon = Math.ceil(nw.lng / step) * step; lon <= se.lng; lon += step) {
        const x = Math.round(toPx(nw.lat, lon).x) + 0.5;
        ctx.strokeStyle = isMajor(lon) ? pal.gridMajor : pal.gridMinor;
        ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, size.y); ctx.stroke();
        if (isMajor(lon) && coords.y % 3 === 0) ctx.fillText(lon.toFixed(step < 0.01 ? 3 : 2) + '°', x + 3, 12);
      }
      for (let lat = Math.ceil(se.lat / step) * step; lat <= nw.lat; lat += step) {
        const y = Math.round(toPx(lat, nw.lng).y) + 0.5;
        ctx.strokeStyle = isMajor(lat) ? pal.gridMajor : pal.gridMinor;
        ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(size.x, y); ctx.stroke();
        if (isMajor(lat) && coords.x % 3 === 0) ctx.fillText(lat.toFixed(step < 0.01 ? 3 : 2) + '°', 3, y - 3);
      }
      return tile;
    },
  });

  EM.basemap = {
    kind: null,
    ground: null,       // always present, under any tiles: visible when tiles fail to load
    tiles: null,
    labels: null,       // borough names, shown only on the fallback basemap
    tileErrors: 0,

    init: function (map, options) {
      map.createPane('emGround');
      map.getPane('emGround').style.zIndex = 150;
      map.createPane('emLabels');
      map.getPane('emLabels').style.zIndex = 450;
      map.getPane('emLabels').style.pointerEvents = 'none';
      this.ground = new GroundLayer({ pane: 'emGround' }).addTo(map);
      this.labels = L.layerGroup([], { pmIgnore: true });
      for (const b of options.boroughs || []) {
        L.marker([b.lat, b.lon], {
          pane: 'emLabels', interactive: false, keyboard: false, pmIgnore: true,
          icon: L.divIcon({ className: 'em-borough', iconSize: null,
            html: '<span>' + EM.escape(b.name) + '</span>' }),
        }).addTo(this.labels);
      }
      this.map = map;
      this.set({ kind: 'fallback' });
    },

    set: function (spec) {
      const map = this.map;
      if (this.tiles) { map.removeLayer(this.tiles); this.tiles = null; }
      this.tileErrors = 0;
      this.kind = spec.kind;
      map.attributionControl.setPrefix(false);
      if (spec.kind === 'fallback') {
        if (!EM.boroughs.lines) this.labels.addTo(map);   // the real boundaries name them otherwise
        map.attributionControl.setPrefix('Built-in basemap: no tiles configured');
      } else if (spec.kind === 'vector') {
        map.removeLayer(this.labels);
        this.tiles = EM.vector.make(spec);
        this.tiles.on('tileerror', () => { this.tileErrors += 1; });
        this.tiles.addTo(map);
        map.attributionControl.setPrefix('Offline vector basemap');
      } else {
        map.removeLayer(this.labels);
        this.tiles = L.tileLayer(spec.url, {
          className: 'em-tiles', pmIgnore: true, maxZoom: 20,
          minZoom: 0, maxNativeZoom: spec.maxNativeZoom || 19,
          attribution: spec.attribution ? EM.escape(spec.attribution) : '',
        });
        this.tiles.on('tileerror', () => { this.tileErrors += 1; });
        this.tiles.addTo(map);
        map.attributionControl.setPrefix(spec.kind === 'mbtiles' ? 'Offline tiles (MBTiles)' : false);
      }
      document.body.dataset.basemap = spec.kind;
    },

    restyle: function () {
      if (this.ground) this.ground.redraw();
      if (this.kind === 'vector' && this.tiles && EM.vector.spec) this.set(EM.vector.spec);   // new paint rules
      EM.boroughs.restyle();
    },
  };

  EM.escape = function (text) {
    return String(text == null ? '' : text).replace(/[&<>"']/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  };
})();

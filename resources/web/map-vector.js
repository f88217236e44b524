/* The offline vector basemap (protomaps-leaflet drawing the emtiles:// Mapbox Vector Tiles of
 * resources/basemap/london.mbtiles), the real borough boundaries over every basemap, and the
 * map's search box (Ctrl+F: a street or place by name, through Python's Places.search).
 * ISA-101: the basemap is greyscale, light and dark; colour stays reserved for alarms.
 * Layers and fields of the tiles: roads (kind, name, ref), rail, buildings, water, parks,
 * boundaries, places (monitorapp/places/profile). Borough edges and names come from the
 * boundaries overlay (GeoJSON), not the tiles, so every basemap shows the same ones. */
(function () {
  'use strict';
  const EM = (window.EM = window.EM || {});

  const STYLE = {
    light: {
      ground: '#f2f2f2', building: '#dcdcdc', buildingEdge: '#cfcfcf', park: '#e6e6e6',
      water: '#d0d4d8', minor: '#ffffff', minorCase: '#d9d9d9', main: '#ffffff', mainCase: '#c8c8c8',
      path: '#c8c8c8', rail: '#b0b0b0', label: '#555555', halo: '#ffffff', place: '#666666',
      borough: '#7a7a7a', boroughText: '#666666', boroughHalo: '#f2f2f2',
    },
    dark: {
      ground: '#1e1e1e', building: '#2c2c2c', buildingEdge: '#333333', park: '#262626',
      water: '#2a3036', minor: '#3a3a3a', minorCase: '#2a2a2a', main: '#4a4a4a', mainCase: '#303030',
      path: '#3a3a3a', rail: '#505050', label: '#bbbbbb', halo: '#111111', place: '#9a9a9a',
      borough: '#8a8a8a', boroughText: '#9a9a9a', boroughHalo: '#1e1e1e',
    },
  };
  EM.vectorStyle = function () { return STYLE[EM.theme] || STYLE.light; };

  const MAIN = { motorway: 1, trunk: 1, primary: 1, secondary: 1, tertiary: 1 };
  const kind = (f) => f.props.kind;
  const isMain = (z, f) => !!MAIN[kind(f)];
  const isMinor = (z, f) => kind(f) === 'minor' || kind(f) === 'service' || kind(f) === 'pedestrian';
  const isPath = (z, f) => kind(f) === 'path';
  // Line width in px by zoom: linear between stops.
  function byZoom(stops) {
    return function (z) {
      if (z <= stops[0][0]) return stops[0][1];
      for (let i = 1; i < stops.length; i++) {
        if (z <= stops[i][0]) {
          const [z0, w0] = stops[i - 1], [z1, w1] = stops[i];
          return w0 + (w1 - w0) * (z - z0) / (z1 - z0);
        }
      }
      return stops[stops.length - 1][1];
    };
  }
  const mainWidth = byZoom([[10, 1], [13, 2.5], [15, 5], [17, 9]]);
  const minorWidth = byZoom([[12, 0.5], [14, 1.5], [15, 3], [17, 6]]);

  function paintRules(s) {
    const P = protomapsL;
    return [
      { dataLayer: 'parks', symbolizer: new P.PolygonSymbolizer({ fill: s.park }) },
      { dataLayer: 'water', filter: (z, f) => f.geomType === 3,
        symbolizer: new P.PolygonSymbolizer({ fill: s.water }) },
      { dataLayer: 'water', filter: (z, f) => f.geomType === 2,
        symbolizer: new P.LineSymbolizer({ color: s.water, width: byZoom([[10, 1], [15, 3]]) }) },
      { dataLayer: 'buildings', minzoom: 14,
        symbolizer: new P.PolygonSymbolizer({ fill: s.building, stroke: s.buildingEdge, width: 0.5 }) },
      { dataLayer: 'rail', symbolizer: new P.LineSymbolizer({ color: s.rail, width: byZoom([[11, 0.5], [15, 1.5]]) }) },
      { dataLayer: 'roads', filter: isPath, minzoom: 14,
        symbolizer: new P.LineSymbolizer({ color: s.path, width: 1, dash: [3, 2] }) },
      // casings first, then the fills over them
      { dataLayer: 'roads', filter: isMinor, minzoom: 14,
        symbolizer: new P.LineSymbolizer({ color: s.minorCase, width: (z) => minorWidth(z) + 1.5, lineCap: 'round' }) },
      { dataLayer: 'roads', filter: isMain, minzoom: 12,
        symbolizer: new P.LineSymbolizer({ color: s.mainCase, width: (z) => mainWidth(z) + 2, lineCap: 'round' }) },
      { dataLayer: 'roads', filter: isMinor, minzoom: 12,
        symbolizer: new P.LineSymbolizer({ color: s.minor, width: minorWidth, lineCap: 'round', lineJoin: 'round' }) },
      { dataLayer: 'roads', filter: isMain,
        symbolizer: new P.LineSymbolizer({ color: s.main, width: mainWidth, lineCap: 'round', lineJoin: 'round' }) },
    ];
  }

  function labelRules(s) {
    const P = protomapsL;
    const street = (size) => new P.LineLabelSymbolizer({
      labelProps: ['name', 'ref'], fill: s.label, stroke: s.halo, width: 3,
      fontFamily: 'sans-serif', fontSize: size, fontWeight: 400, repeatDistance: 400 });
    return [
      // street names from street zoom in: main roads from z13, streets from z14, the rest z15
      { dataLayer: 'roads', minzoom: 13, filter: isMain, symbolizer: street(12) },
      { dataLayer: 'roads', minzoom: 14, filter: (z, f) => kind(f) === 'minor' || kind(f) === 'pedestrian', symbolizer: street(11) },
      { dataLayer: 'roads', minzoom: 15, filter: (z, f) => kind(f) === 'service' || kind(f) === 'path', symbolizer: street(10) },
      { dataLayer: 'places', minzoom: 13, filter: (z, f) => kind(f) === 'district' || kind(f) === 'station',
        symbolizer: new P.CenteredTextSymbolizer({ fill: s.place, stroke: s.halo, width: 3,
          fontFamily: 'sans-serif', fontSize: 12, fontWeight: 600 }) },
      { dataLayer: 'parks', minzoom: 15, symbolizer: new P.CenteredTextSymbolizer({ fill: s.place,
          stroke: s.halo, width: 2, fontFamily: 'sans-serif', fontSize: 10, fontStyle: 'italic' }) },
    ];
  }

  // ---- the vector basemap layer ----
  EM.vector = {
    layer: null,
    spec: null,
    make: function (spec) {
      if (typeof protomapsL === 'undefined') throw new Error('protomaps-leaflet did not load');
      const s = EM.vectorStyle();
      const b = spec.bounds;
      this.spec = spec;
      this.layer = protomapsL.leafletLayer({
        url: spec.url, maxDataZoom: spec.maxNativeZoom || 15, minZoom: spec.minZoom || 0, maxZoom: 20,
        bounds: b ? [[b[1], b[0]], [b[3], b[2]]] : undefined,
        paintRules: paintRules(s), labelRules: labelRules(s), backgroundColor: s.ground,
        attribution: EM.escape(spec.attribution || '© OpenStreetMap contributors'),
        pane: 'tilePane', className: 'em-vector', pmIgnore: true,
      });
      return this.layer;
    },
  };

  // ---- the real borough boundaries, on every basemap ----
  EM.boroughs = {
    lines: null,
    labels: null,
    names: [],
    set: function (map, features) {
      if (!map.getPane('emBoroughs')) {
        map.createPane('emBoroughs');
        map.getPane('emBoroughs').style.zIndex = 350;      // over the basemap, under zones and tags
        map.getPane('emBoroughs').style.pointerEvents = 'none';
      }
      if (this.lines) { map.removeLayer(this.lines); map.removeLayer(this.labels); }
      this.renderer = this.renderer || L.canvas({ pane: 'emBoroughs', padding: 0.2 });
      this.lines = L.geoJSON(features, {
        pane: 'emBoroughs', renderer: this.renderer, interactive: false, pmIgnore: true,
        style: () => this.style(),
      });
      this.labels = L.layerGroup([], { pmIgnore: true });
      this.names = [];
      for (const f of features) {
        const p = f.properties || {};
        if (!p.label) continue;
        this.names.push(String(p.name));
        L.marker([p.label[1], p.label[0]], {
          pane: 'emLabels', interactive: false, keyboard: false, pmIgnore: true,
          icon: L.divIcon({ className: 'em-borough em-borough-real', iconSize: null,
            html: '<span>' + EM.escape(p.name) + '</span>' }),
        }).addTo(this.labels);
      }
      this.lines.addTo(map);
      this.labels.addTo(map);
      if (!this.zoomHooked) {
        this.zoomHooked = true;
        const toggle = () => map.getContainer().classList.toggle('em-street-zoom', map.getZoom() >= 15);
        map.on('zoomend', toggle);
        toggle();
      }
    },
    style: function () {
      const s = EM.vectorStyle();
      return { color: s.borough, weight: 1.5, opacity: 0.9, dashArray: '6 4', fill: false };
    },
    restyle: function () { if (this.lines) this.lines.setStyle(this.style()); },
  };

  // ---- the search box: a street or place by name ----
  EM.search = {
    box: null, input: null, list: null, results: [], active: -1, pin: null, lastChosen: null,
    init: function (map) {
      const self = this;
      const Control = L.Control.extend({
        options: { position: 'topright' },
        onAdd: function () {
          const box = L.DomUtil.create('div', 'em-search leaflet-bar');
          const input = L.DomUtil.create('input', 'em-search-input', box);
          input.type = 'search';
          input.placeholder = 'Find a street or place (Ctrl+F)';
          input.setAttribute('aria-label', 'Find a street or place');
          input.spellcheck = false;
          const list = L.DomUtil.create('ul', 'em-search-results', box);
          list.setAttribute('role', 'listbox');
          L.DomEvent.disableClickPropagation(box);
          L.DomEvent.disableScrollPropagation(box);
          self.box = box; self.input = input; self.list = list;
          input.addEventListener('input', () => self.query(input.value));
          input.addEventListener('keydown', (ev) => self.onKey(ev));
          return box;
        },
      });
      new Control().addTo(map);
      // Ctrl+F anywhere on the page puts the keyboard in the box
      document.addEventListener('keydown', function (ev) {
        if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && (ev.key === 'f' || ev.key === 'F')) {
          ev.preventDefault();
          self.focus();
        }
      }, true);
    },
    focus: function () {
      if (!this.input) return false;
      this.input.focus();
      this.input.select();
      return document.activeElement === this.input;
    },
    query: function (text) {
      const self = this;
      if (!text.trim() || !EM.bridge || typeof EM.bridge.searchPlaces !== 'function') { self.show([]); return; }
      EM.bridge.searchPlaces(text, 8, function (json) {
        if (self.input.value !== text) return;          // a later keystroke has its own answer
        let found = [];
        try { found = JSON.parse(json) || []; } catch (e) { found = []; }
        self.show(found);
      });
    },
    show: function (results, quiet) {
      this.results = results;
      this.active = results.length ? 0 : -1;
      const list = this.list;
      list.textContent = '';
      if (!quiet && this.input.value.trim() && !results.length) {
        const li = L.DomUtil.create('li', 'em-search-none', list);
        li.textContent = 'No street or place of that name';
      }
      results.forEach((r, i) => {
        const li = L.DomUtil.create('li', 'em-search-item', list);
        li.setAttribute('role', 'option');
        li.textContent = r.text;                      // text from data is text
        li.addEventListener('mousedown', (ev) => { ev.preventDefault(); this.choose(i); });
      });
      this.mark();
    },
    mark: function () {
      Array.from(this.list.querySelectorAll('.em-search-item')).forEach((li, i) => {
        li.classList.toggle('active', i === this.active);
      });
    },
    onKey: function (ev) {
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        if (this.results.length) {
          const n = this.results.length;
          this.active = (this.active + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
          this.mark();
        }
        ev.preventDefault();
      } else if (ev.key === 'Enter') {
        ev.preventDefault();
        if (this.active >= 0) this.choose(this.active);
      } else if (ev.key === 'Escape') {       // done: the box, its list and the pin go
        ev.preventDefault();
        this.input.value = '';
        this.show([]);
        this.clearPin();
        EM.map.getContainer().focus();
      }
      ev.stopPropagation();        // arrows and +/- in the box are text, not map moves
    },
    clearPin: function () {
      if (this.pin) { EM.map.removeLayer(this.pin); this.pin = null; }
    },
    choose: function (i) {
      const r = this.results[i];
      if (!r) return;
      const map = EM.map;
      map.setView([r.lat, r.lon], r.kind === 'borough' ? 13 : 16, { animate: false });
      this.clearPin();
      this.pin = L.circleMarker([r.lat, r.lon], { radius: 9, color: EM.pal().select, weight: 2,
        fill: false, dashArray: '3 3', interactive: false, pmIgnore: true }).addTo(map);
      this.pin.bindTooltip(EM.escape(r.text), { permanent: true, direction: 'right', className: 'em-search-pin' });
      this.lastChosen = r;
      this.input.value = r.text;
      this.show([], true);
      EM.emit('placeChosen', r.text);
    },
  };
})();

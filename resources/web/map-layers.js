/* The map's live layers: tag markers (canvas, batched), zones (GeoJSON, editable with Geoman),
 * and the selected tag's accuracy circle, last-fix age and trail.
 * ISA-101: markers are grey; colour only for alerts, always backed by a shape, a "!" glyph and a
 * text label (critical: red triangle with a ring, high: orange diamond with a ring, medium:
 * yellow square, low: blue circle). Stale tags are hollow with a dashed outline. */
(function () {
  'use strict';
  const EM = (window.EM = window.EM || {});

  const PRIORITY = {
    critical: { color: '#c62828', shape: 'triangle', radius: 13, ring: true, word: 'CRITICAL' },
    high: { color: '#e07b00', shape: 'diamond', radius: 12, ring: true, word: 'HIGH' },
    medium: { color: '#d6b400', shape: 'square', radius: 9, ring: false, word: 'MEDIUM' },
    low: { color: '#2f6fb0', shape: 'circle', radius: 9, ring: false, word: 'LOW' },
  };
  EM.PRIORITY = PRIORITY;
  const ZONE_LABEL_MIN_ZOOM = 14;   // zone names from street level in
  // Zones are neutral grey, told apart by their outline (dashed exclusion, solid curfew, dotted
  // appointment) and, from street level in, their label. A zone takes its alert's priority
  // colour only while an open alert concerns it (setZoneAlarms), so colour on the map always
  // means something is wrong.
  const ZONE_STYLE = {
    exclusion: { dashArray: '7 5', fillOpacity: 0.07, word: 'EXCLUSION' },
    curfew: { dashArray: null, fillOpacity: 0.04, word: 'CURFEW' },
    appointment: { dashArray: '2 5', fillOpacity: 0.04, word: 'APPOINTMENT' },
    scene: { dashArray: '10 4', fillOpacity: 0.08, word: 'SCENE' },   // a crime-mapping query's place
  };

  // A canvas marker drawn as a circle, triangle, diamond or square, with an optional glyph.
  L.Canvas.include({
    _updateShapeMarker: function (layer) {
      if (!this._drawing || layer._empty()) { return; }
      const p = layer._point, ctx = this._ctx, r = Math.max(Math.round(layer._radius), 1);
      ctx.beginPath();
      switch (layer.options.shape) {
        case 'triangle':
          ctx.moveTo(p.x, p.y - r * 1.15); ctx.lineTo(p.x + r, p.y + r * 0.75);
          ctx.lineTo(p.x - r, p.y + r * 0.75); ctx.closePath(); break;
        case 'diamond':
          ctx.moveTo(p.x, p.y - r); ctx.lineTo(p.x + r, p.y); ctx.lineTo(p.x, p.y + r);
          ctx.lineTo(p.x - r, p.y); ctx.closePath(); break;
        case 'square':
          ctx.rect(p.x - r * 0.85, p.y - r * 0.85, r * 1.7, r * 1.7); break;
        default:
          ctx.arc(p.x, p.y, r, 0, Math.PI * 2, false);
      }
      this._fillStroke(ctx, layer);
      if (layer.options.glyph) {
        ctx.globalAlpha = 1;
        ctx.fillStyle = layer.options.glyphColor || '#fff';
        ctx.font = 'bold ' + Math.round(r * 1.25) + 'px sans-serif';
        ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
        ctx.fillText(layer.options.glyph, p.x, p.y + (layer.options.shape === 'triangle' ? r * 0.15 : 0) + 1);
      }
    },
  });
  // A canvas renderer that draws all plain markers of one style as a single path (one fill, one
  // stroke), then the rest (alerts, rings) one by one on top: 5,000 tags repaint in a few ms.
  const BatchCanvas = L.Canvas.extend({
    _draw: function () {
      const bounds = this._redrawBounds, ctx = this._ctx;
      ctx.save();
      if (bounds) {
        const size = bounds.getSize();
        ctx.beginPath();
        ctx.rect(bounds.min.x, bounds.min.y, size.x, size.y);
        ctx.clip();
      }
      this._drawing = true;
      const buckets = new Map(), singles = [];
      for (let order = this._drawFirst; order; order = order.next) {
        const layer = order.layer;
        if (bounds && !(layer._pxBounds && layer._pxBounds.intersects(bounds))) continue;
        const key = layer.options.batchKey;
        if (!key) { singles.push(layer); continue; }
        if (layer._empty()) continue;
        let list = buckets.get(key);
        if (!list) buckets.set(key, (list = []));
        list.push(layer);
      }
      for (const list of buckets.values()) {
        ctx.beginPath();
        for (const layer of list) {
          const p = layer._point, r = Math.max(Math.round(layer._radius), 1);
          ctx.moveTo(p.x + r, p.y);
          ctx.arc(p.x, p.y, r, 0, Math.PI * 2, false);
        }
        this._fillStroke(ctx, list[0]);
      }
      for (const layer of singles) layer._updatePath();
      this._drawing = false;
      ctx.restore();
    },
  });

  const ShapeMarker = L.CircleMarker.extend({
    options: { shape: 'circle', glyph: null, glyphColor: '#fff' },
    _updatePath: function () { this._renderer._updateShapeMarker(this); },
  });

  function markerStyle(d) {
    const pal = EM.pal();
    const pr = d.priority && PRIORITY[d.priority];
    let st;
    if (pr) {
      return { shape: pr.shape, radius: pr.radius, color: pal.select, weight: 1.5, opacity: 1,
        fill: true, fillColor: pr.color, fillOpacity: 1, dashArray: null, batchKey: null,
        glyph: '!', glyphColor: d.priority === 'medium' ? '#1d1d1d' : '#ffffff' };
    }
    if (d.stale) {
      st = { shape: 'circle', radius: 5, color: pal.stale, weight: 1.5, opacity: 1,
        fill: true, fillColor: pal.ground, fillOpacity: 0.6, dashArray: '2 2', glyph: null };
    } else {
      st = { shape: 'circle', radius: 5, color: pal.markerEdge, weight: 1, opacity: 0.9,
        fill: true, fillColor: pal.marker, fillOpacity: 0.95, dashArray: null, glyph: null };
    }
    st.fillRule = 'nonzero';     // one path per style: overlapping tags stay filled
    st.batchKey = [st.color, st.weight, st.opacity, st.fillColor, st.fillOpacity, st.dashArray].join('|');
    return st;
  }

  function labelText(d) {
    const pr = d.priority && PRIORITY[d.priority];
    return (pr ? '! ' + pr.word + ' · ' : '') + (d.label || d.device) + (d.stale ? ' (stale)' : '');
  }

  EM.layers = {
    labelText: labelText,
    markers: new Map(),    // device -> {layer, ring, data}
    zones: new Map(),      // zone id -> layer (feature kept on layer.feature)
    zoneAlarms: new Map(), // zone id -> priority of its worst open alert
    drafts: null,
    selection: null,
    selected: null,

    init: function (map) {
      this.map = map;
      map.createPane('emZones').style.zIndex = 410;
      map.createPane('emTrail').style.zIndex = 420;
      map.createPane('emMarkers').style.zIndex = 630;
      this.zoneRenderer = L.canvas({ pane: 'emZones', padding: 0.2 });
      this.trailRenderer = L.canvas({ pane: 'emTrail', padding: 0.2 });
      this.markerRenderer = new BatchCanvas({ pane: 'emMarkers', padding: 0.2, tolerance: 4 });
      this.markerGroup = L.featureGroup([], { pmIgnore: true }).addTo(map);
      this.alertTips = L.layerGroup([], { pmIgnore: true }).addTo(map);
      // One hover label for all tags (5,000 bound tooltips would cost more than the markers).
      this.hoverTip = L.tooltip({ direction: 'right', offset: [8, 0], className: 'em-tip', pmIgnore: true });
      this.markerGroup.on('click', (e) => {
        if (e.layer && e.layer.options.device != null) EM.emit('markerClicked', e.layer.options.device);
      });
      this.markerGroup.on('mouseover', (e) => {
        const m = e.layer && this.markers.get(e.layer.options.device);
        if (!m || (m.tip && !m.tipHidden)) return;   // a label hidden by declutter shows on hover
        this.hoverTip.setLatLng(e.layer.getLatLng()).setContent(EM.escape(labelText(m.data))).addTo(map);
      });
      this.markerGroup.on('mouseout', () => this.hoverTip.remove());
      this.zoneGroup = L.featureGroup([], { pmIgnore: false }).addTo(map);
      this.zoneLabels = L.layerGroup([], { pmIgnore: true });
      // Zone names only where they can be read: at borough zoom a hundred labels are noise,
      // and a calm map shows the zones' outlines alone until the operator zooms in.
      const labels = this.zoneLabels;
      const showLabels = function () {
        const want = map.getZoom() >= ZONE_LABEL_MIN_ZOOM;
        if (want && !map.hasLayer(labels)) map.addLayer(labels);
        else if (!want && map.hasLayer(labels)) map.removeLayer(labels);
      };
      map.on('zoomend', showLabels);
      map.on('moveend', () => this.placeLabels());
      map.on('zoomend', () => this.declutter());
      map.whenReady(showLabels);
      this.drafts = L.featureGroup([]).addTo(map);
      this.selection = L.layerGroup([], { pmIgnore: true }).addTo(map);
      this.ageTimer = setInterval(() => this.refreshAge(), 1000);
      // The keyboard (Leaflet's own: arrows pan, + and - zoom, once the map has focus, Ctrl+0 in
      // the console): "]" and "[" go to the next and previous alerting tag, worst first, and
      // select it as a click would; Escape clears the selection.
      map.getContainer().addEventListener('keydown', (ev) => {
        if (ev.ctrlKey || ev.altKey || ev.metaKey) return;
        if (ev.key === ']' || ev.key === '[') { this.cycleAlert(ev.key === ']' ? 1 : -1); ev.preventDefault(); }
      });
    },

    cycleAlert: function (step) {
      const rank = { critical: 0, high: 1, medium: 2, low: 3 };
      const list = [...this.markers.values()].filter((e) => e.data.priority)
        .sort((a, b) => (rank[a.data.priority] - rank[b.data.priority]) ||
          (a.data.device < b.data.device ? -1 : a.data.device > b.data.device ? 1 : 0));
      if (!list.length) return null;
      const at = list.findIndex((e) => e.data.device === this.keyboardAt);
      const next = list[((at < 0 ? (step > 0 ? -1 : 0) : at) + step + list.length) % list.length];
      this.keyboardAt = next.data.device;
      this.map.panTo([next.data.lat, next.data.lon], { animate: false });
      EM.emit('markerClicked', next.data.device);
      return next.data.device;
    },

    // Labels sit beside their marker on the side with room: an alert's label to the right unless
    // the marker is in the right third of the map, the selected tag's to the left unless it is
    // in the left third (and below when that would put it on its alert label), so no label runs
    // off the map's edge. Re-placed after every pan or zoom.
    tipSide: function (latlng, preferred) {
      const map = this.map;
      if (!map || !map._loaded) return preferred;
      const x = map.latLngToContainerPoint(latlng).x, w = map.getSize().x;
      if (preferred === 'right' && x > w * 0.65) return 'left';
      if (preferred === 'left' && x < w * 0.35) return 'right';
      return preferred;
    },

    selectionSide: function (latlng) {
      const m = this.selected ? this.markers.get(this.selected) : null;
      const side = this.tipSide(latlng, 'left');
      return m && m.tip && m.tipSide === side ? 'bottom' : side;
    },

    placeLabels: function () {
      for (const entry of this.markers.values()) {
        if (entry.tip && this.tipSide(entry.tip.getLatLng(), 'right') !== entry.tipSide) this.styleMarker(entry);
      }
      this.placeSelectionLabel();
      this.declutter();
    },

    // Declutter: alert labels never pile up. In priority order (critical first, then the
    // oldest-named device for a stable result), a label whose box would overlap one already
    // placed is hidden; its marker keeps its shape, colour and "!" (and shows the label on
    // hover), and the label kept nearest says how many are hidden under it ("+2").
    labelBox: function (entry) {
      const map = this.map;
      const pr = PRIORITY[entry.data.priority];
      const p = map.latLngToContainerPoint(entry.tip.getLatLng());
      if (!this.measureCtx) this.measureCtx = document.createElement('canvas').getContext('2d');
      this.measureCtx.font = 'bold 13px "DejaVu Sans", Arial, sans-serif';
      const w = this.measureCtx.measureText(labelText(entry.data) + ' +99').width + 16, h = 22;
      const dx = pr.radius + 4;
      const x0 = entry.tipSide === 'left' ? p.x - dx - w : p.x + dx;
      return { x0: x0, y0: p.y - h / 2, x1: x0 + w, y1: p.y + h / 2 };
    },

    declutter: function () {
      const map = this.map;
      if (!map || !map._loaded) return;
      const rank = { critical: 0, high: 1, medium: 2, low: 3 };
      const entries = [];
      for (const e of this.markers.values()) if (e.tip) entries.push(e);
      entries.sort((a, b) => (rank[a.data.priority] - rank[b.data.priority]) ||
        (a.data.device < b.data.device ? -1 : a.data.device > b.data.device ? 1 : 0));
      const kept = [];
      let hidden = 0;
      for (const e of entries) {
        const box = this.labelBox(e);
        const over = kept.find((k) => box.x0 < k.box.x1 && k.box.x0 < box.x1 && box.y0 < k.box.y1 && k.box.y0 < box.y1);
        if (over) {
          over.under += 1;
          hidden += 1;
          if (!e.tipHidden) { this.alertTips.removeLayer(e.tip); e.tipHidden = true; }
          continue;
        }
        kept.push({ entry: e, box: box, under: 0 });
        if (e.tipHidden) { this.alertTips.addLayer(e.tip); e.tipHidden = false; }
      }
      for (const k of kept) {
        const text = labelText(k.entry.data) + (k.under ? ' +' + k.under : '');
        if (k.entry.tipText !== text) { k.entry.tip.setContent(EM.escape(text)); k.entry.tipText = text; }
      }
      this.labelCounts = { shown: kept.length, hidden: hidden };
    },

    placeSelectionLabel: function () {
      const ring = this.selectRing;
      if (!ring || !ring._map) return;
      const side = this.selectionSide(ring.getLatLng());
      if (side === this.selectSideNow) return;
      this.selectSideNow = side;
      const offset = { left: [-14, 0], right: [14, 0], bottom: [0, 14] }[side];
      ring.unbindTooltip();
      ring.bindTooltip('', { permanent: true, direction: side, offset: offset, className: 'em-tip em-selected-tip' });
      this.refreshAge();
    },

    // rows: [device, lat, lon, acc, label, priority, stale, t] (compact: 5,000 tags a batch).
    applyMarkers: function (rows) {
      for (const r of rows) {
        const d = { device: r[0], lat: r[1], lon: r[2], acc: r[3], label: r[4],
          priority: r[5] || null, stale: !!r[6], t: r[7] };
        if (!(Number.isFinite(d.lat) && Number.isFinite(d.lon))) continue;
        const m = this.markers.get(d.device);
        if (!m) {
          const layer = new ShapeMarker([d.lat, d.lon], Object.assign(
            { renderer: this.markerRenderer, pane: 'emMarkers', pmIgnore: true,
              bubblingMouseEvents: false, device: d.device }, markerStyle(d)));
          const entry = { layer: layer, data: d, ring: null, tip: null };
          this.markers.set(d.device, entry);
          this.markerGroup.addLayer(layer);
          if (d.priority) this.styleMarker(entry);
          continue;
        }
        const old = m.data;
        m.data = d;
        if (old.lat !== d.lat || old.lon !== d.lon) {
          m.layer.setLatLng([d.lat, d.lon]);
          if (m.ring) m.ring.setLatLng([d.lat, d.lon]);
          if (m.tip) {
            m.tip.setLatLng([d.lat, d.lon]);
            if (this.tipSide(m.tip.getLatLng(), 'right') !== m.tipSide) this.styleMarker(m);
          }
        }
        if (old.priority !== d.priority || old.stale !== d.stale || old.label !== d.label) {
          this.styleMarker(m);
        }
        if (this.selected === d.device) this.moveSelection(d);
      }
      this.declutter();
    },

    styleMarker: function (entry) {
      const d = entry.data, layer = entry.layer;
      const pr = d.priority && PRIORITY[d.priority];
      layer.setStyle(markerStyle(d));
      if (entry.tip) { this.alertTips.removeLayer(entry.tip); entry.tip = null; }
      entry.tipHidden = false;
      entry.tipText = null;
      if (pr) {
        // Alerts keep their label on screen: the colour is never the only cue.
        const side = entry.tipSide = this.tipSide(L.latLng(d.lat, d.lon), 'right');
        entry.tip = L.tooltip({ permanent: true, direction: side,
          offset: [side === 'right' ? pr.radius + 4 : -(pr.radius + 4), 0],
          interactive: false, className: 'em-tip em-alert-tip em-' + d.priority })
          .setLatLng([d.lat, d.lon]).setContent(EM.escape(labelText(d)));
        this.alertTips.addLayer(entry.tip);
        layer.bringToFront();
      }
      if (entry.ring && !(pr && pr.ring)) { this.markerGroup.removeLayer(entry.ring); entry.ring = null; }
      if (pr && pr.ring) {
        if (!entry.ring) {
          entry.ring = L.circleMarker([d.lat, d.lon], { renderer: this.markerRenderer, pane: 'emMarkers',
            radius: 20, fill: false, weight: 2.5, interactive: false, pmIgnore: true });
          this.markerGroup.addLayer(entry.ring);
        }
        entry.ring.setLatLng([d.lat, d.lon]);
        entry.ring.setStyle({ color: pr.color, opacity: 0.9 });
      }
    },

    restyleAll: function () {
      for (const entry of this.markers.values()) this.styleMarker(entry);
      for (const layer of this.zones.values()) this.styleZone(layer);
      if (this.selected) this.select(this.selectedArgs);
    },

    removeMarkers: function (devices) {
      for (const dev of devices) {
        const m = this.markers.get(dev);
        if (!m) continue;
        this.markerGroup.removeLayer(m.layer);
        if (m.ring) this.markerGroup.removeLayer(m.ring);
        if (m.tip) this.alertTips.removeLayer(m.tip);
        this.markers.delete(dev);
        if (this.selected === dev) this.select(null);
      }
      this.declutter();       // labels it hid may show again
    },

    // Leaflet redraws canvases on the next animation frame; draw now so the batch time we
    // report includes the painting, and hidden views stay current.
    flush: function () {
      for (const r of [this.markerRenderer, this.zoneRenderer, this.trailRenderer]) {
        if (r._redrawRequest) { L.Util.cancelAnimFrame(r._redrawRequest); r._redraw(); }
      }
    },

    // ---- zones ----
    setZones: function (features) {
      for (const layer of this.zones.values()) this.zoneGroup.removeLayer(layer);
      this.zones.clear();
      this.zoneLabels.clearLayers();
      this.drafts.clearLayers();
      for (const f of features) {
        const layer = this.zoneLayer(f);
        if (!layer) continue;
        layer.feature = f;
        this.zones.set(String(f.id != null ? f.id : f.properties.id), layer);
        layer.addTo(this.zoneGroup);
        this.styleZone(layer);
      }
    },

    zoneLayer: function (f) {
      const g = f && f.geometry;
      if (!g) return null;
      const opts = { renderer: this.zoneRenderer, pane: 'emZones' };
      if (g.type === 'Point') {
        const radius = Number((f.properties || {}).radius_m);
        if (!(radius > 0)) return null;
        return L.circle([g.coordinates[1], g.coordinates[0]], Object.assign({ radius: radius }, opts));
      }
      if (g.type === 'Polygon' || g.type === 'MultiPolygon') {
        const rings = L.GeoJSON.coordsToLatLngs(g.coordinates, g.type === 'Polygon' ? 1 : 2);
        return L.polygon(rings, opts);
      }
      return null;
    },

    setZoneAlarms: function (alarms) {
      const next = new Map(Object.entries(alarms || {}).filter(([, pr]) => PRIORITY[pr]));
      const changed = new Set();
      for (const [id, pr] of next) if (this.zoneAlarms.get(id) !== pr) changed.add(id);
      for (const id of this.zoneAlarms.keys()) if (!next.has(id)) changed.add(id);
      this.zoneAlarms = next;
      for (const id of changed) {
        const layer = this.zones.get(id);
        if (layer) this.styleZone(layer);
      }
      return changed.size;
    },

    zoneStyle: function (id) {
      const layer = this.zones.get(String(id));
      if (!layer) return null;
      const o = layer.options;
      return { color: o.color, weight: o.weight, dashArray: o.dashArray || null, fillOpacity: o.fillOpacity,
        alarm: this.zoneAlarms.get(String(id)) || null,
        label: layer._emLabel ? layer._emLabel.getContent() : null };
    },

    styleZone: function (layer) {
      const p = (layer.feature && layer.feature.properties) || {};
      const st = ZONE_STYLE[p.kind] || ZONE_STYLE.appointment;
      const alarm = this.zoneAlarms.get(String(p.id != null ? p.id : layer.feature.id)) || null;
      const pr = alarm ? PRIORITY[alarm] : null;
      const color = pr ? pr.color : EM.pal().zone;
      layer.setStyle({ color: color, weight: pr ? 3 : 1.5, opacity: pr ? 1 : 0.8, dashArray: st.dashArray,
        fill: true, fillColor: color, fillOpacity: pr ? 0.18 : st.fillOpacity });
      if (pr) layer.bringToFront();
      // The label sits just above the zone, so it never covers a tag inside it.
      if (layer._emLabel) this.zoneLabels.removeLayer(layer._emLabel);
      let at;
      if (layer instanceof L.Circle) {
        const c = layer.getLatLng();
        at = [c.lat + layer.getRadius() / 111320, c.lng];
      } else {
        const b = layer.getBounds();
        at = [b.getNorth(), b.getCenter().lng];
      }
      layer._emLabel = L.tooltip({ permanent: true, direction: 'top', offset: [0, -2], interactive: false,
        className: 'em-zone-label em-zone-' + (p.kind || 'other') + (pr ? ' em-zone-alarm em-' + alarm : '') })
        .setLatLng(at).setContent(EM.escape((pr ? pr.word + ' · ' : '') + st.word + ' · ' + (p.name || p.id || '')));
      this.zoneLabels.addLayer(layer._emLabel);
    },

    // GeoJSON of a zone layer: circles as a Point with properties.radius_m (spec §3).
    toFeature: function (layer, properties) {
      const props = Object.assign({}, properties || {});
      let geometry;
      if (layer instanceof L.Circle) {
        const c = layer.getLatLng();
        geometry = { type: 'Point', coordinates: [c.lng, c.lat] };
        props.radius_m = Math.round(layer.getRadius() * 10) / 10;
      } else {
        geometry = layer.toGeoJSON(7).geometry;
        delete props.radius_m;
      }
      const f = { type: 'Feature', geometry: geometry, properties: props };
      if (props.id != null) f.id = props.id;
      return f;
    },

    // ---- selection: accuracy circle, last-fix age, trail ----
    select: function (args) {
      this.selection.clearLayers();
      this.selected = args ? args.device : null;
      this.selectedArgs = args;
      if (!args) return;
      const pal = EM.pal();
      const m = this.markers.get(args.device);
      const trail = args.trail || [];
      const last = trail.length ? trail[trail.length - 1] : null;
      const here = m ? m.data : (last ? { lat: last.lat, lon: last.lon, acc: last.acc } : null);
      this.clockOffset = (args.now != null ? args.now : Date.now() / 1000) - Date.now() / 1000;
      this.lastFixT = m && m.data.t != null ? m.data.t : (last ? last.t : null);
      this.drawTrail(trail, args.gapWarn || 120, args.gapBreak || 600, pal);
      if (!here) return;
      this.accuracy = L.circle([here.lat, here.lon], { radius: Math.max(here.acc || 0, 1),
        renderer: this.trailRenderer, pane: 'emTrail', color: pal.accuracy, weight: 1,
        fillColor: pal.accuracy, fillOpacity: 0.12, interactive: false, pmIgnore: true }).addTo(this.selection);
      this.selectRing = L.circleMarker([here.lat, here.lon], { renderer: this.markerRenderer,
        pane: 'emMarkers', radius: 14, color: pal.select, weight: 3, fill: false,
        interactive: false, pmIgnore: true }).addTo(this.selection);
      this.selectSideNow = null;
      this.placeSelectionLabel();
    },

    moveSelection: function (d) {
      if (this.accuracy) { this.accuracy.setLatLng([d.lat, d.lon]); this.accuracy.setRadius(Math.max(d.acc || 0, 1)); }
      if (this.selectRing) { this.selectRing.setLatLng([d.lat, d.lon]); this.placeSelectionLabel(); }
      if (d.t != null) this.lastFixT = d.t;
    },

    drawTrail: function (trail, gapWarn, gapBreak, pal) {
      const solid = [], dashed = [];
      let run = [];
      for (let i = 0; i < trail.length; i++) {
        const p = trail[i], ll = [p.lat, p.lon];
        if (i > 0) {
          const gap = p.t - trail[i - 1].t, prev = [trail[i - 1].lat, trail[i - 1].lon];
          if (gap > gapBreak) {           // over 10 min: the line is broken
            if (run.length > 1) solid.push(run);
            run = [ll];
            L.circleMarker(prev, { renderer: this.trailRenderer, pane: 'emTrail', radius: 3,
              color: pal.trail, weight: 1.5, fill: false, interactive: false, pmIgnore: true })
              .addTo(this.selection);
            continue;
          }
          if (gap > gapWarn) {            // over 2 min: dashed
            if (run.length > 1) solid.push(run);
            dashed.push([prev, ll]);
            run = [ll];
            continue;
          }
        }
        run.push(ll);
      }
      if (run.length > 1) solid.push(run);
      const common = { renderer: this.trailRenderer, pane: 'emTrail', color: pal.trail,
        interactive: false, pmIgnore: true, opacity: 0.85 };
      if (solid.length) L.polyline(solid, Object.assign({ weight: 2.5 }, common)).addTo(this.selection);
      if (dashed.length) L.polyline(dashed, Object.assign({ weight: 2, dashArray: '6 6' }, common)).addTo(this.selection);
      this.trailCounts = { solid: solid.length, dashed: dashed.length, points: trail.length };
    },

    ageText: function () {
      if (this.lastFixT == null) return 'no fix';
      const age = Math.max(0, Date.now() / 1000 + this.clockOffset - this.lastFixT);
      if (age < 90) return 'last fix ' + Math.round(age) + ' s ago';
      if (age < 5400) return 'last fix ' + Math.floor(age / 60) + ' min ago';
      return 'last fix ' + (age / 3600).toFixed(1) + ' h ago';
    },

    refreshAge: function () {
      if (!this.selected || !this.selectRing) return;
      const m = this.markers.get(this.selected);
      const name = m ? (m.data.label || m.data.device) : this.selected;
      const acc = m && m.data.acc != null ? ' · ±' + Math.round(m.data.acc) + ' m' : '';
      this.selectRing.setTooltipContent(EM.escape(name + ' · ' + this.ageText() + acc));
    },
  };
})();

/* The map page's entry points and its one QWebChannel bridge to Python (ui/mapview.py).
 * Python calls EM.* functions with JSON arguments (json.dumps on the Python side); the page
 * calls slots of the `bridge` object: pageReady (the handshake), batchApplied, zoneCreated,
 * zoneEdited, zoneRemoved, zoneSelected (map-zones.js), markerClicked, mapClicked, jsError. */
(function () {
  'use strict';
  const EM = (window.EM = window.EM || {});
  EM.bridge = null;
  EM.ready = false;
  EM.errors = [];
  EM.batches = 0;

  EM.emit = function (slot) {
    const args = Array.prototype.slice.call(arguments, 1);
    if (EM.bridge && typeof EM.bridge[slot] === 'function') EM.bridge[slot].apply(EM.bridge, args);
  };

  EM.reportError = function (text) {
    EM.errors.push(String(text));
    EM.emit('jsError', String(text));
  };
  window.addEventListener('error', function (ev) {
    EM.reportError((ev.message || 'error') + ' at ' + (ev.filename || '?') + ':' + (ev.lineno || 0));
  });
  // Python's calls go through here, so a failure is reported over the bridge, not lost.
  EM.call = function (name, args) {
    try {
      return EM[name].apply(EM, args);
    } catch (err) {
      EM.reportError(name + ': ' + (err && err.stack ? err.stack : err));
      return null;
    }
  };

  const DRAW_SHAPES = { polygon: 'Polygon', rectangle: 'Rectangle', circle: 'Circle' };

  EM.init = function (map, options) {
    EM.map = map;
    EM.theme = options.theme === 'dark' ? 'dark' : 'light';
    map.attributionControl.setPrefix(false);
    EM.basemap.init(map, options);
    EM.layers.init(map, options);
    EM.initDrawing(map);
    EM.search.init(map);
    map.on('click', function (e) {
      if (map.pm && (map.pm.globalDrawModeEnabled() || map.pm.globalRemovalModeEnabled())) return;
      if (EM.zoneTools.picking) return;
      EM.emit('mapClicked', e.latlng.lat, e.latlng.lng);
    });
    EM.setTheme(EM.theme);
    if (typeof QWebChannel === 'undefined' || !window.qt || !qt.webChannelTransport) {
      EM.errors.push('Qt WebChannel is not available');
      console.error('Qt WebChannel is not available: the page runs without its bridge');
      return;
    }
    new QWebChannel(qt.webChannelTransport, function (channel) {
      EM.bridge = channel.objects.bridge;
      EM.ready = true;
      EM.bridge.pageReady(JSON.stringify({
        leaflet: L.version, geoman: !!(L.PM && map.pm), sinceNavigationMs: performance.now(),
      }));
    });
  };

  // ---- Geoman: drawing, editing, deleting zones ----
  // The zone tools only for a role that may edit zones (the store decides; the page explains)
  EM.setZoneTools = function (enabled) {
    const map = EM.drawingMap;
    if (!map || !map.pm) return;
    if (!enabled) {
      map.pm.disableDraw();
      map.pm.disableGlobalRemovalMode();
      if (EM.zoneTools && EM.zoneTools.stop) EM.zoneTools.stop();
    }
    if (map.pm.controlsVisible() !== !!enabled) map.pm.toggleControls();
  };

  EM.initDrawing = function (map) {
    if (!map.pm) { EM.errors.push('Leaflet-Geoman did not load'); return; }
    map.pm.setGlobalOptions({ snappable: false, allowSelfIntersection: false,
      templineStyle: { color: '#3d4650' }, hintlineStyle: { color: '#3d4650', dashArray: '5 5' },
      pathOptions: { color: '#3d4650', weight: 2, fillOpacity: 0.08, dashArray: '4 4' } });
    map.pm.addControls({ position: 'topleft', drawMarker: false, drawCircleMarker: false,
      drawPolyline: false, drawText: false, cutPolygon: false, rotateMode: false,
      dragMode: false, drawPolygon: true, drawRectangle: true, drawCircle: true,
      editMode: false, removalMode: true });
    EM.zoneTools.init(map);     // map-zones.js: one zone at a time, the mouse reaches Geoman
    EM.drawingMap = map;
    map.on('pm:create', function (e) {
      const layer = e.layer;
      map.removeLayer(layer);
      EM.layers.drafts.addLayer(layer);
      const shape = String(e.shape || '').toLowerCase();
      EM.emit('zoneCreated', JSON.stringify(EM.layers.toFeature(layer, { shape: shape })));
    });
    map.on('pm:remove', function (e) {
      const f = e.layer && e.layer.feature;
      if (!f) return;
      const id = String(f.id != null ? f.id : f.properties.id);
      if (EM.layers.zones.get(id) === e.layer) {
        EM.layers.zones.delete(id);
        if (e.layer._emLabel) EM.layers.zoneLabels.removeLayer(e.layer._emLabel);
        EM.emit('zoneRemoved', id);
      }
    });
    map.on('layeradd', function (e) {     // every zone layer reports its edits
      const layer = e.layer;
      if (!layer.feature || layer._emEditHooked || !layer.pm) return;
      layer._emEditHooked = true;
      layer.on('pm:edit', function () { EM.zoneEdited(layer); });
    });
  };

  EM.zoneEdited = function (layer) {
    const props = Object.assign({}, layer.feature.properties);
    const f = EM.layers.toFeature(layer, props);
    if (layer.feature.id != null) f.id = layer.feature.id;
    layer.feature = f;
    EM.layers.styleZone(layer);
    EM.emit('zoneEdited', JSON.stringify(f));
  };

  EM.startDrawing = function (shape) {
    const pmShape = DRAW_SHAPES[shape];
    if (!pmShape) throw new Error('unknown shape ' + shape);
    EM.map.pm.enableDraw(pmShape);
  };

  EM.enableEditing = function (zoneId) { return EM.zoneTools.edit(zoneId); };

  EM.stopEditing = function () {
    if (!EM.map.pm) return;
    EM.map.pm.disableDraw();
    if (EM.map.pm.globalRemovalModeEnabled()) EM.map.pm.disableGlobalRemovalMode();
    EM.zoneTools.stop();
  };

  // ---- the API Python calls ----
  EM.applyMarkers = function (rows, removed, batch) {
    const t0 = performance.now();
    EM.layers.applyMarkers(rows);
    if (removed && removed.length) EM.layers.removeMarkers(removed);
    EM.layers.flush();
    const ms = performance.now() - t0;
    EM.batches += 1;
    EM.emit('batchApplied', ms, rows.length, batch == null ? 0 : batch);
    return ms;
  };

  EM.setZones = function (features) {
    const editing = EM.zoneTools.editing;
    EM.layers.setZones(features);
    EM.zoneTools.editing = null;
    if (editing !== null && !EM.zoneTools.edit(editing)) EM.zoneTools.release();   // handles stay on it
    EM.layers.flush();
  };
  EM.setZoneAlarms = function (alarms) { const n = EM.layers.setZoneAlarms(alarms); EM.layers.flush(); return n; };
  EM.zoneStyle = function (id) { return EM.layers.zoneStyle(id); };
  EM.clearDrafts = function () { EM.layers.drafts.clearLayers(); };
  EM.select = function (args) { EM.layers.select(args); EM.layers.flush(); };
  // No animation: the operator jumps to an alert, and an animated zoom waits for frames that a
  // hidden or minimised window never paints.
  EM.panTo = function (lat, lon, zoom) {
    if (zoom == null) EM.map.panTo([lat, lon], { animate: false });
    else EM.map.setView([lat, lon], zoom, { animate: false });
  };
  EM.setBasemap = function (spec) { EM.basemap.set(spec); };
  EM.setBoroughs = function (features) {
    EM.boroughs.set(EM.map, features);
    EM.map.removeLayer(EM.basemap.labels);     // the real names replace the approximate ones
  };
  EM.focusSearch = function () { return EM.search.focus(); };
  // The map takes the keyboard: the container gets the focus and Leaflet's keyboard handler is
  // told so (the DOM focus event does not come while the view itself is still taking focus).
  EM.focusMap = function () {
    const kb = EM.map.keyboard;
    EM.map.getContainer().focus();
    if (kb && kb.enabled() && !kb._focused) kb._onFocus();
    return document.activeElement === EM.map.getContainer();
  };

  EM.setTheme = function (theme) {
    EM.theme = theme === 'dark' ? 'dark' : 'light';
    document.body.classList.remove('theme-light', 'theme-dark');
    document.body.classList.add('theme-' + EM.theme);
    EM.basemap.restyle();
    EM.layers.restyleAll();
    EM.layers.flush();
  };

  // A summary of what the page shows, for tests and diagnostics.
  EM.state = function () {
    const alerts = {};
    for (const m of EM.layers.markers.values()) {
      if (m.data.priority) alerts[m.data.device] = m.data.priority;
    }
    const zones = {};
    for (const [id, layer] of EM.layers.zones) zones[id] = layer.feature.properties.kind || null;
    const zoneAlarms = Object.fromEntries(EM.layers.zoneAlarms);
    const onMap = [];
    EM.layers.markerGroup.eachLayer(function (l) { if (l._map) onMap.push(l); });
    EM.layers.alertTips.eachLayer(function (l) { if (l._map) onMap.push(l); });
    return {
      ready: EM.ready, theme: EM.theme, basemap: EM.basemap.kind, tileErrors: EM.basemap.tileErrors,
      markers: EM.layers.markers.size, markerLayersOnMap: onMap.length, alerts: alerts,
      zones: zones, zoneAlarms: zoneAlarms, drafts: EM.layers.drafts.getLayers().length, selected: EM.layers.selected,
      trail: EM.layers.trailCounts || null, batches: EM.batches, errors: EM.errors.slice(),
      boroughLabels: document.querySelectorAll('.em-borough').length,
      boroughs: EM.boroughs.names.slice(), vectorTiles: EM.basemap.kind === 'vector',
      search: EM.search.input ? { text: EM.search.input.value, focused: document.activeElement === EM.search.input,
        results: EM.search.results.map((r) => r.text), chosen: EM.search.lastChosen, pin: !!EM.search.pin } : null,
      center: EM.map.getCenter(), zoom: EM.map.getZoom(),
      labels: EM.layers.labelCounts || { shown: 0, hidden: 0 },
    };
  };
  EM.selectionLabel = function () {
    const t = EM.layers.selectRing && EM.layers.selectRing.getTooltip();
    return t ? { side: t.options.direction, text: t.getContent() } : null;
  };
  EM.markerData = function (device) {
    const m = EM.layers.markers.get(device);
    return m ? Object.assign({}, m.data, { shape: m.layer.options.shape, fillColor: m.layer.options.fillColor,
      ring: !!m.ring, tooltip: m.tip ? m.tip.getContent() : EM.layers.labelText(m.data),
      tipSide: m.tip ? m.tip.options.direction : null }) : null;
  };
})();

/* Zone tools on the map: editing one zone at a time, and the mouse reaching Geoman.
 *
 * The tags' canvas (pane emMarkers) and the trail's canvas lie over the whole map, above the
 * zones' canvas, so without this a press on a zone or a vertex handle went to the tags' canvas
 * and panned the map, and the eraser never received a click. Here:
 *  - Geoman's vertex handles are drawn in their own pane (emHandles) above the tags;
 *  - while a zone tool is active (draw, edit, eraser) the map container carries the class
 *    em-zone-tool, and map.css makes the tags' and trail's canvases transparent to the mouse,
 *    so clicks reach the zones' canvas (eraser, picking a zone to edit) and the handles;
 *  - "Edit a zone" (the toolbar's pencil, or EM.enableEditing from Python) replaces Geoman's
 *    global edit mode: the operator clicks one zone and only that zone gets handles. Clicking
 *    another zone moves the handles to it; Esc or the pencil again ends editing.
 * Events to Python: zoneSelected(id) when a zone is picked for editing ('' when editing ends).
 */
(function () {
  'use strict';
  const EM = (window.EM = window.EM || {});
  const BUTTON = 'emEditZone';

  EM.zoneTools = {
    map: null,
    editing: null,          // id of the zone with handles, or null
    picking: false,         // the "Edit a zone" tool is on

    init: function (map) {
      this.map = map;
      map.createPane('emHandles').style.zIndex = 640;
      map.pm.setGlobalOptions({ panes: { vertexPane: 'emHandles', layerPane: 'overlayPane',
        markerPane: 'emHandles' } });
      map.pm.Toolbar.createCustomControl({
        name: BUTTON, block: 'edit', className: 'leaflet-pm-icon-edit',
        title: 'Edit a zone: click the zone, then drag its corners (Esc ends)',
        toggle: true, actions: ['finishMode'],
        afterClick: (e, ctx) => { this.setPicking(ctx.button.toggled()); },
      });
      const sync = () => this.syncPointer();
      map.on('pm:globaldrawmodetoggled pm:globalremovalmodetoggled pm:globaleditmodetoggled', sync);
      map.on('pm:drawstart pm:drawend', sync);
      // A click on a zone's canvas while picking: that zone, and only it, gets the handles.
      EM.layers.zoneGroup.on('click', (e) => {
        if (!this.picking || !e.layer || !e.layer.feature) return;
        if (map.pm.globalRemovalModeEnabled()) return;
        L.DomEvent.stop(e);
        this.edit(this.idOf(e.layer));
      });
      document.addEventListener('keydown', (ev) => {
        if (ev.key === 'Escape' && this.picking) this.stop();
      });
      this.syncPointer();
    },

    idOf: function (layer) {
      const f = layer.feature;
      return String(f.id != null ? f.id : f.properties.id);
    },

    // Tags and trail let the mouse through while any zone tool is active.
    syncPointer: function () {
      const pm = this.map.pm;
      const on = this.picking || pm.globalDrawModeEnabled() || pm.globalRemovalModeEnabled()
        || pm.globalEditModeEnabled();
      this.map.getContainer().classList.toggle('em-zone-tool', !!on);
      return !!on;
    },

    setPicking: function (on) {
      this.picking = !!on;
      if (!this.picking) this.release();
      this.syncPointer();
    },

    // Handles on this zone only (the others lose theirs); returns false for an unknown zone.
    edit: function (zoneId) {
      const layer = EM.layers.zones.get(String(zoneId));
      if (!layer || !layer.pm) return false;
      for (const other of EM.layers.zones.values()) {
        if (other !== layer && other.pm && other.pm.enabled()) other.pm.disable();
      }
      if (!this.picking) {
        const btn = this.map.pm.Toolbar.buttons[BUTTON];
        if (btn && !btn.toggled()) this.map.pm.Toolbar.toggleButton(BUTTON, true);
        this.picking = true;
      }
      layer.pm.enable({ allowSelfIntersection: false, draggable: false, snappable: false });
      if (this.editing !== String(zoneId)) {
        this.editing = String(zoneId);
        EM.emit('zoneSelected', this.editing);
      }
      this.syncPointer();
      return true;
    },

    release: function () {
      for (const layer of EM.layers.zones.values()) if (layer.pm && layer.pm.enabled()) layer.pm.disable();
      if (this.editing !== null) { this.editing = null; EM.emit('zoneSelected', ''); }
    },

    stop: function () {
      const btn = this.map.pm.Toolbar.buttons[BUTTON];
      if (btn && btn.toggled()) this.map.pm.Toolbar.toggleButton(BUTTON, false);
      this.picking = false;
      this.release();
      this.syncPointer();
    },

    // Pixel positions of a zone's vertex handles (tests and diagnostics).
    handles: function (zoneId) {
      const layer = EM.layers.zones.get(String(zoneId));
      if (!layer || !layer.pm || !layer.pm.enabled()) return [];
      const out = [];
      const markers = layer.pm._markers ? layer.pm._markers.flat(Infinity) : [];
      for (const m of markers.concat(layer.pm._outerMarker ? [layer.pm._outerMarker] : [])) {
        if (!m || !m._icon) continue;
        const p = this.map.latLngToContainerPoint(m.getLatLng());
        out.push([p.x, p.y]);
      }
      return out;
    },

    // Which zones have handles now.
    withHandles: function () {
      const out = [];
      for (const [id, layer] of EM.layers.zones) if (layer.pm && layer.pm.enabled()) out.push(id);
      return out;
    },
  };
})();

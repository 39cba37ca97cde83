// The runtime every Yizhan map carries: the global `yz`, whose builders the page calls as
// `var layer = yz.<builder>(map, meta, ...)` with JSON arguments (yizhan/maps/_core.py).
//
// Design rules:
// * data arrive as JSON (large station/demand sets compressed, see `_core.pack`) and
//   every marker, popup and label is built here, client-side; labels come in `meta.i18n`;
// * text from the data is only ever put in the page with `textContent` or as a DOM
//   node, never as HTML, so a name such as `<img src=x onerror=...>` shows as text;
// * all vector layers share one canvas renderer in a pane above the tiles, so they hit-test
//   together (a canvas on top would otherwise swallow the clicks meant for layers below);
//   `yz.restack` keeps districts, coverage circles and gaps under the stations;
// * base maps come from `yz.base`; choosing one in another coordinate system (Amap's
//   GCJ-02) fires `yz:crs` on the map and every overlay moves to the positions the page
//   carries for that system (computed in Python with yizhan.geo.crs; see
//   yizhan/maps/basemaps.py). `yz.gcj(map)` says which system overlays are drawn in.
//
// Needs Leaflet, Leaflet.markercluster, Leaflet.heat and pako (loaded before it).
var yz = (function () {
  "use strict";
  var yz = {};
  // Every layer and control the page built, as [builder, object] (yizhan/maps/_core.py),
  // and those of one builder.
  yz.made = [];
  yz.find = function (kind) {
    return yz.made.filter(function (x) { return x[0] === kind; }).map(function (x) { return x[1]; });
  };

  // -- small helpers -------------------------------------------------------------------
  function el(tag, cls, text, parent) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  yz.el = el;

  // A number for people; `fixed`: always `digits` decimals (columns of shares line up).
  function num(x, lang, digits, fixed) {
    if (x === null || x === undefined || x === "" || isNaN(+x)) { return "—"; }
    var d = digits === undefined ? 0 : digits;
    return (+x).toLocaleString(lang === "zh" ? "zh-CN" : "en-US",
                               {maximumFractionDigits: d, minimumFractionDigits: fixed ? d : 0});
  }
  yz.num = num;

  function paren(text, lang) { return lang === "zh" ? "（" + text + "）" : " (" + text + ")"; }

  // An amount of demand with its unit ("1,234 people aged 65+", "4.5 km² of land").
  function amount(meta, x) {
    var t = num(x, meta.i18n.lang, meta.digits || 0);
    return meta.unit && t !== "—" ? t + " " + meta.unit : t;
  }
  yz.amount = amount;

  // -- base maps and coordinate systems ------------------------------------------------
  // Whether overlays are drawn in GCJ-02 (an Amap base is shown).
  function gcj(map) { return map._yzCrs === "gcj02"; }
  yz.gcj = gcj;
  // [lat, lon] of item i of column arrays d: WGS-84, or GCJ-02 (g) from the deltas the
  // page carries in millionths of a degree (d.gdy, d.gdx).
  function at(d, i, g) {
    return g && d.gdy ? [d.lat[i] + d.gdy[i] / 1e6, d.lon[i] + d.gdx[i] / 1e6] : [d.lat[i], d.lon[i]];
  }
  yz.at = at;
  yz.base = function (map, meta, spec) {
    var opts = {attribution: spec.attribution, subdomains: spec.subdomains,
                maxZoom: 19, maxNativeZoom: spec.max_zoom};
    var tiles = spec.urls.map(function (u) { return L.tileLayer(u, opts); });
    var layer = tiles.length === 1 ? tiles[0] : L.layerGroup(tiles);
    layer.yz = {crs: spec.crs, key: spec.key};
    layer.on("add", function () {
      if ((map._yzCrs || "wgs84") !== spec.crs) {
        map._yzCrs = spec.crs;
        map.fire("yz:crs", {crs: spec.crs});
      }
    });
    return layer;
  };
  // A GeoJSON layer redrawn from its other copy when the coordinate system changes.
  function geoSwap(map, layer, geo, geoG) {
    if (!geoG) { return; }
    map.on("yz:crs", function () {
      layer.clearLayers();
      layer.addData(gcj(map) ? geoG : geo);
      yz.restack(map);
    });
  }

  // Decode {z: base64 of raw-deflated UTF-8 JSON}; plain objects pass through.
  yz.unpack = function (p) {
    if (!p || typeof p.z !== "string") { return p; }
    var bin = atob(p.z), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return JSON.parse(pako.inflateRaw(bytes, {to: "string"}));
  };

  // One canvas renderer per map, in a pane above the tiles and below the markers.
  yz.renderer = function (map) {
    if (!map._yzRenderer) {
      if (!map.getPane("yzVector")) { map.createPane("yzVector").style.zIndex = 450; }
      map._yzRenderer = L.canvas({pane: "yzVector", padding: 0.5, tolerance: 4});
      map._yzStack = [];
    }
    return map._yzRenderer;
  };

  // Layers that must stay below the stations, bottom first.
  yz.stack = function (map, layer, order) {
    yz.renderer(map);
    map._yzStack.push({layer: layer, order: order});
    map._yzStack.sort(function (a, b) { return a.order - b.order; });
    layer.on("add", function () { yz.restack(map); });
  };
  yz.restack = function (map) {
    var s = map._yzStack || [];
    for (var i = s.length - 1; i >= 0; i--) {
      if (map.hasLayer(s[i].layer) && s[i].layer.bringToBack) { s[i].layer.bringToBack(); }
    }
  };

  function table(parent) { return el("table", "yz-table", null, parent); }
  function row(tb, head, value) {
    var tr = el("tr", null, null, tb);
    el("th", null, head, tr);
    return el("td", null, value, tr);
  }
  function guessMark(node, T, lang) { el("span", "yz-guess", paren(T.guessed, lang), node); }
  // Fill {key} without String.replace's "$&" patterns (values may come from the data).
  function fill(text, key, value) { return text.split("{" + key + "}").join(String(value)); }

  // -- freshness: stale and needs-check (bits of d.fl, see planner.FLAG_*) -------------
  function flagCodes(meta, f) {
    var out = [];
    for (var k = 0; k < meta.problems.length; k++) { if ((f >>> (2 + k)) & 1) { out.push(meta.problems[k]); } }
    return out;
  }
  function reasonText(meta, codes) {
    var I = meta.i18n, T = I.text;
    var names = (codes || []).map(function (c) { return I.problems[c] || String(c); });
    return names.length ? fill(T.needs_check_reasons, "reasons", names.join(I.lang === "zh" ? "、" : ", "))
                        : T.needs_check_plain;
  }
  function checkNote(box, meta, codes) {
    var w = el("div", "yz-warn", null, box);
    el("b", null, "⚠ " + meta.i18n.text.needs_check, w);
    el("div", null, reasonText(meta, codes), w);
    return w;
  }
  function staleNote(box, meta, verified, extra) {
    var T = meta.i18n.text, s = el("div", "yz-stale-note", null, box);
    el("b", null, meta.stale_text, s);
    el("div", null, (verified ? fill(T.last_verified_on, "date", verified) : T.never_verified) + (extra ? " · " + extra : ""), s);
    return s;
  }
  function stationName(meta, d, i) {
    var en = d.name_en ? d.name_en[i] : "";
    return meta.i18n.lang === "en" && en ? en : d.name[i];
  }
  yz.flagCodes = flagCodes;

  // -- stations ------------------------------------------------------------------------
  yz.stationPopup = function (d, i, meta) {
    var I = meta.i18n, T = I.text, lang = I.lang;
    var g = d.g[i] | 0;
    function guessed(field) { var k = meta.guess_fields.indexOf(field); return k >= 0 && ((g >>> k) & 1) === 1; }
    var box = el("div", "yz-popup");
    var name = d.name[i], en = d.name_en ? d.name_en[i] : "";
    var title = lang === "en" && en ? en : name;
    var sub = lang === "en" && en ? name : en;
    el("div", "yz-title", title, box);
    if (sub && sub !== title) { el("div", "yz-sub", sub, box); }
    var f = d.fl ? d.fl[i] | 0 : 0;
    if (f & 2) { checkNote(box, meta, flagCodes(meta, f)); }
    if (f & 1) { staleNote(box, meta, d.ver[i] >= 0 ? d.ver_tab[d.ver[i]] : null); }
    var tb = table(box), td;
    var cat = meta.categories[d.cat[i]];
    td = row(tb, T.f_category, cat ? I.categories[cat] : T.uncategorised);
    if (guessed("category")) { guessMark(td, T, lang); }
    td = row(tb, T.f_status, I.statuses[meta.statuses[d.st[i]]]);
    if (guessed("status")) { guessMark(td, T, lang); }
    var hi = d.hours[i];
    td = row(tb, T.f_hours, hi >= 0 ? d.hours_tab[hi] : T.unknown);
    if (hi >= 0 && guessed("opening_hours")) { guessMark(td, T, lang); }
    if (d.open) {
      var o = d.open[i];
      td = row(tb, T.f_open_now, o === 1 ? T.open : o === 0 ? T.closed : T.unknown);
      td.className = o === 1 ? "yz-open" : o === 0 ? "yz-closed" : "yz-unknown";
      if (o !== null && o >= 0 && (guessed("opening_hours") || guessed("status"))) { guessMark(td, T, lang); }
    }
    var bits = d.am[i] >>> 0, names = [];
    for (var k = 0; k < meta.amenities.length; k++) {
      if ((bits >>> k) & 1) { names.push(I.amenities[meta.amenities[k]]); }
    }
    td = row(tb, T.f_amenities, names.length ? names.join(lang === "zh" ? "、" : ", ") : T.none);
    if (guessed("amenities")) { guessMark(td, T, lang); }
    if (d.op[i] >= 0) {
      td = row(tb, T.f_operator, d.op_tab[d.op[i]]);
      if (guessed("operator")) { guessMark(td, T, lang); }
    }
    if (d.dist[i] >= 0) {
      td = row(tb, T.f_district, d.dist_tab[d.dist[i]]);
      if (guessed("district")) { guessMark(td, T, lang); }
    }
    if (d.ver[i] >= 0) {
      td = row(tb, T.f_last_verified, d.ver_tab[d.ver[i]]);
      if (guessed("last_verified_at")) { guessMark(td, T, lang); }
    }
    row(tb, T.f_id, d.id[i]);
    return box;
  };

  // Canvas circle of station i: category colour; hollow and dashed when not operational,
  // greyed when stale, a thick red stroke when it needs checking.
  function stationStyle(meta, d, i, R) {
    var c = d.cat[i], last = meta.colors.length - 1;
    var col = meta.colors[c] || meta.colors[last];
    var f = d.fl ? d.fl[i] | 0 : 0, stale = (f & 1) === 1, check = (f & 2) === 2;
    var operational = d.st[i] === 0;
    return {
      renderer: R, radius: check ? 7.5 : 6.5, weight: check ? 3 : operational ? 1.5 : 2,
      color: check ? meta.check_color : stale ? meta.stale_stroke : operational ? "#ffffff" : col,
      opacity: 1, fillColor: stale ? (meta.stale_colors[c] || meta.stale_colors[last]) : col,
      fillOpacity: operational ? 0.95 : 0.25,
      dashArray: operational ? null : "3 2", bubblingMouseEvents: false
    };
  }
  yz.stationStyle = stationStyle;

  yz.stations = function (map, meta, packed) {
    var d = yz.unpack(packed), n = d.lat.length, R = yz.renderer(map);
    var group = L.markerClusterGroup({
      chunkedLoading: true, chunkInterval: 120, chunkDelay: 30,
      showCoverageOnHover: false, maxClusterRadius: 55, disableClusteringAtZoom: 17,
      spiderfyOnMaxZoom: true,
      chunkProgress: function (done, total) {
        if (done >= total && !group.yz.ready) {
          group.yz.ready = true;
          var q = group.yz.queue; group.yz.queue = [];
          for (var j = 0; j < q.length; j++) { q[j](); }
          group.fire("yz:ready");
        }
      }
    });
    var markers = new Array(n), g0 = gcj(map);
    for (var i = 0; i < n; i++) {
      var m = L.circleMarker(at(d, i, g0), stationStyle(meta, d, i, R));
      m.yzI = i;
      markers[i] = m;
    }
    var popup = L.popup({maxWidth: 320, autoPanPadding: [20, 20]});
    function show(i) {
      popup.setLatLng(markers[i].getLatLng()).setContent(yz.stationPopup(d, i, meta)).openOn(map);
    }
    group.yz = {data: d, markers: markers, show: show, ready: n === 0, queue: [],
      focus: function (i) {
        if (!map.hasLayer(group)) { map.addLayer(group); }
        var go = function () { group.zoomToShowLayer(markers[i], function () { show(i); }); };
        if (group.yz.ready) { go(); } else { group.yz.queue.push(go); }
      }
    };
    group.on("click", function (e) { if (e.layer && e.layer.yzI !== undefined) { show(e.layer.yzI); } });
    group.addLayers(markers);
    // Another coordinate system: move every marker and cluster them again (out of the
    // group first, so that markercluster does not re-file them one by one).
    map.on("yz:crs", function () {
      var g = gcj(map);
      group.clearLayers();
      group.yz.ready = n === 0;
      for (var k = 0; k < n; k++) { markers[k].setLatLng(at(d, k, g)); }
      group.addLayers(markers);
      if (map.hasLayer(popup)) { map.closePopup(popup); }
    });
    yz.stationLayers.push(group);
    return group;
  };

  // Resolves once every station layer on a map has finished clustering.
  yz.stationLayers = [];
  yz.whenReady = function () {
    return Promise.all(yz.stationLayers.map(function (g) {
      return g.yz.ready ? Promise.resolve() : new Promise(function (r) { g.once("yz:ready", r); });
    }));
  };

  // Red rings around the stations that need checking, unclustered so that they show even
  // when their station is inside a cluster; built on first display.
  yz.needsCheck = function (map, meta, stations) {
    var group = L.featureGroup(), built = false, d = stations.yz.data, idx = [];
    if (d.fl) { for (var i = 0; i < d.fl.length; i++) { if (d.fl[i] & 2) { idx.push(i); } } }
    group.yz = {indices: idx};
    group.on("add", function () {
      if (built) { return; }
      built = true;
      var R = yz.renderer(map);
      idx.forEach(function (i) {
        var ring = L.circleMarker(at(d, i, gcj(map)), {
          renderer: R, radius: 12, color: meta.check_color, weight: 3, opacity: 0.95,
          fillColor: meta.check_color, fillOpacity: 0.08, bubblingMouseEvents: false
        });
        ring.yzI = i;
        ring.bindTooltip(function () {
          var box = el("div", "yz-popup");
          el("div", "yz-title", stationName(meta, d, i), box);
          checkNote(box, meta, flagCodes(meta, d.fl[i]));
          return box;
        }, {direction: "top", offset: [0, -10]});
        ring.on("click", function () { ring.closeTooltip(); stations.yz.show(i); });
        group.addLayer(ring);
      });
    });
    map.on("yz:crs", function () {
      var g = gcj(map);
      group.eachLayer(function (ring) { ring.setLatLng(at(d, ring.yzI, g)); });
    });
    return group;
  };

  // The stale stations only (clustered, same style), built on first display.
  yz.staleStations = function (map, meta, stations) {
    var group = L.markerClusterGroup({
      chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 55,
      disableClusteringAtZoom: 17, spiderfyOnMaxZoom: true
    });
    var built = false, ms = [], d = stations.yz.data;
    group.yz = {count: 0};
    group.on("add", function () {
      if (built) { return; }
      built = true;
      var R = yz.renderer(map), g = gcj(map);
      for (var i = 0; d.fl && i < d.fl.length; i++) {
        if (!(d.fl[i] & 1)) { continue; }
        var m = L.circleMarker(at(d, i, g), stationStyle(meta, d, i, R));
        m.yzI = i;
        ms.push(m);
      }
      group.yz.count = ms.length;
      group.addLayers(ms);
    });
    map.on("yz:crs", function () {
      if (!built) { return; }
      var g = gcj(map);
      group.clearLayers();
      ms.forEach(function (m) { m.setLatLng(at(d, m.yzI, g)); });
      group.addLayers(ms);
    });
    group.on("click", function (e) { if (e.layer && e.layer.yzI !== undefined) { stations.yz.show(e.layer.yzI); } });
    return group;
  };

  // The list of stations that need checking, shown with their layer.
  yz.checkList = function (map, meta, stations, layer) {
    var T = meta.i18n.text, lang = meta.i18n.lang, idx = layer.yz.indices, MAX = 200;
    var Ctl = L.Control.extend({
      options: {position: "bottomleft"},
      onAdd: function () {
        var box = L.DomUtil.create("div", "yz-checklist");
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        var head = el("div", "yz-legend-head", null, box);
        el("span", null, "⚠ " + T.needs_check + paren(num(idx.length, lang), lang), head);
        var btn = el("button", null, "−", head);
        btn.type = "button"; btn.setAttribute("aria-label", T.needs_check);
        head.addEventListener("click", function () {
          var c = box.classList.toggle("yz-collapsed");
          btn.textContent = c ? "+" : "−";
        });
        var body = el("div", "yz-legend-body", null, box);
        var ol = el("ol", null, null, body), d = stations.yz.data;
        idx.slice(0, MAX).forEach(function (i) {
          var li = el("li", null, stationName(meta, d, i), ol);
          el("small", null, reasonText(meta, flagCodes(meta, d.fl[i])), li);
          li.tabIndex = 0;
          li.addEventListener("click", function () { stations.yz.focus(i); });
          li.addEventListener("keydown", function (e) { if (e.key === "Enter") { stations.yz.focus(i); } });
        });
        if (idx.length > MAX) { el("div", "yz-sub", "… +" + num(idx.length - MAX, lang), body); }
        return box;
      }
    });
    var ctl = new Ctl();
    function sync() {
      if (map.hasLayer(layer) && idx.length) { ctl.addTo(map); } else { ctl.remove(); }
    }
    layer.on("add remove", sync);
    sync();
    return ctl;
  };

  // Circles of the service radius around operational stations, built on first display.
  yz.coverage = function (map, meta, stations, radius) {
    var group = L.featureGroup(), built = false;
    group.on("add", function () {
      if (built) { return; }
      built = true;
      var d = stations.yz.data, R = yz.renderer(map), g = gcj(map);
      for (var i = 0; i < d.lat.length; i++) {
        if (d.st[i] !== 0) { continue; }
        var col = meta.colors[d.cat[i]] || meta.colors[meta.colors.length - 1];
        var c = L.circle(at(d, i, g), {
          renderer: R, radius: radius, interactive: false,
          color: col, weight: 1, opacity: 0.4, fillColor: col, fillOpacity: 0.06
        });
        c.yzI = i;
        group.addLayer(c);
      }
      yz.restack(map);
    });
    map.on("yz:crs", function () {
      var d = stations.yz.data, g = gcj(map);
      group.eachLayer(function (c) { c.setLatLng(at(d, c.yzI, g)); });
    });
    yz.stack(map, group, 1);
    return group;
  };

  yz.heat = function (map, meta, packed) {
    var d = yz.unpack(packed);
    function points(g) {
      var pts = new Array(d.lat.length);
      for (var i = 0; i < pts.length; i++) { var p = at(d, i, g); pts[i] = [p[0], p[1], d.w[i]]; }
      return pts;
    }
    var layer = L.heatLayer(points(gcj(map)), {radius: 18, blur: 16, minOpacity: 0.05, maxZoom: 16});
    map.on("yz:crs", function () { layer.setLatLngs(points(gcj(map))); });
    return layer;
  };

  // -- GeoJSON overlays ------------------------------------------------------------------
  function propsBox(title, rows) {
    var box = el("div", "yz-popup");
    el("div", "yz-title", title, box);
    var tb = table(box);
    for (var i = 0; i < rows.length; i++) { row(tb, rows[i][0], rows[i][1]); }
    return box;
  }
  yz.propsBox = propsBox;

  yz.gaps = function (map, meta, geo, geoG) {
    var T = meta.i18n.text, lang = meta.i18n.lang;
    var layer = L.geoJSON(gcj(map) && geoG ? geoG : geo, {
      renderer: yz.renderer(map),
      style: function () {
        return {color: "#b2182b", weight: 1.5, dashArray: "5 4", fillColor: "#b2182b", fillOpacity: 0.2};
      },
      onEachFeature: function (f, l) {
        l.bindTooltip(function () {
          var p = f.properties || {}, rows = [];
          if (p.name !== undefined && p.name !== null) { rows.push([T.f_name, p.name]); }
          var dem = p.demand !== undefined ? p.demand : p.uncovered_demand;
          if (dem !== undefined && dem !== null) { rows.push([T.f_demand, amount(meta, dem)]); }
          if (p.area_km2 !== undefined && p.area_km2 !== null) { rows.push([T.f_area, num(p.area_km2, lang, 2) + " km²"]); }
          return propsBox(T.gap, rows);
        }, {sticky: true});
      }
    });
    geoSwap(map, layer, geo, geoG);
    yz.stack(map, layer, 2);
    return layer;
  };

  // Areas within a walk of a station along streets (yizhan.geo.network isochrones);
  // `title` is the layer's label (e.g. "15-minute walk").
  yz.walkAreas = function (map, meta, geo, geoG, title) {
    var T = meta.i18n.text;
    var layer = L.geoJSON(gcj(map) && geoG ? geoG : geo, {
      renderer: yz.renderer(map),
      style: function () {
        return {color: "#1a9850", weight: 1, opacity: 0.7, fillColor: "#1a9850", fillOpacity: 0.15};
      },
      onEachFeature: function (f, l) {
        l.bindTooltip(function () {
          var p = f.properties || {}, rows = [];
          if (p.name !== undefined && p.name !== null) { rows.push([T.f_name, p.name]); }
          return propsBox(title, rows);
        }, {sticky: true});
      }
    });
    geoSwap(map, layer, geo, geoG);
    yz.stack(map, layer, 1);
    return layer;
  };

  // Stations farther than the largest snap distance from every walkable way: a mark each.
  yz.farFromNetwork = function (map, meta, geo, geoG, title) {
    var layer = L.geoJSON(gcj(map) && geoG ? geoG : geo, {
      pointToLayer: function (f, latlng) {
        var icon = L.divIcon({className: "", iconSize: [22, 22], iconAnchor: [11, 11],
                              html: el("div", "yz-far", "!")});
        return L.marker(latlng, {icon: icon, riseOnHover: true});
      },
      onEachFeature: function (f, l) {
        l.bindTooltip(function () {
          var p = f.properties || {};
          return propsBox(title, [[p.name || p.id || "", Math.round(p.snap_m) + " m"]]);
        });
      }
    });
    geoSwap(map, layer, geo, geoG);
    return layer;
  };

  yz.sites = function (map, meta, geo, geoG) {
    var T = meta.i18n.text, lang = meta.i18n.lang;
    var layer = L.geoJSON(gcj(map) && geoG ? geoG : geo, {
      pointToLayer: function (f, latlng) {
        var p = f.properties || {};
        var icon = L.divIcon({className: "", iconSize: [26, 26], iconAnchor: [13, 13], popupAnchor: [0, -12],
                              html: el("div", "yz-site", p.rank !== undefined && p.rank !== null ? p.rank : "+")});
        return L.marker(latlng, {icon: icon, riseOnHover: true});
      },
      onEachFeature: function (f, l) {
        l.bindPopup(function () {
          var p = f.properties || {}, rows = [];
          var after = p.covered_after !== undefined ? p.covered_after : p.cumulative_covered;
          if (p.rank !== undefined) { rows.push([T.f_rank, num(p.rank, lang)]); }
          if (p.gain !== undefined) { rows.push([T.f_gain, "+" + amount(meta, p.gain)]); }
          if (after !== undefined) {
            var pct = p.cumulative_covered_pct;
            rows.push([T.f_covered_after, amount(meta, after) + (pct !== undefined && pct !== null ? paren(num(pct, lang, 1) + "%", lang) : "")]);
          }
          return propsBox(T.site, rows);
        });
      }
    });
    geoSwap(map, layer, geo, geoG);
    return layer;
  };

  // Stations suggested by workers and not yet decided (POST /proposals): a "?" marker each.
  yz.proposals = function (map, meta, geo, geoG) {
    var T = meta.i18n.text, I = meta.i18n, lang = meta.i18n.lang;
    var layer = L.geoJSON(gcj(map) && geoG ? geoG : geo, {
      pointToLayer: function (f, latlng) {
        var icon = L.divIcon({className: "", iconSize: [24, 24], iconAnchor: [12, 12], popupAnchor: [0, -11],
                              html: el("div", "yz-proposal", "?")});
        return L.marker(latlng, {icon: icon, riseOnHover: true});
      },
      onEachFeature: function (f, l) {
        l.bindPopup(function () {
          var p = f.properties || {}, rows = [];
          var names = (p.amenities || []).map(function (a) { return I.amenities[a] || a; });
          rows.push([T.f_name, p.name || ""]);
          rows.push([T.f_amenities, names.length ? names.join(lang === "zh" ? "、" : ", ") : T.none]);
          if (p.hours) { rows.push([T.f_hours, p.hours]); }
          if (p.district) { rows.push([T.f_district, p.district]); }
          if (p.created_at) { rows.push([T.f_suggested_at, String(p.created_at).slice(0, 16).replace("T", " ")]); }
          rows.push([T.f_id, String(f.id)]);
          return propsBox(T.proposal, rows);
        });
      }
    });
    geoSwap(map, layer, geo, geoG);
    return layer;
  };

  function binColor(meta, v) {
    if (v === null || v === undefined || isNaN(+v)) { return meta.share_missing; }
    for (var i = 0; i < meta.share_bins.length; i++) { if (+v < meta.share_bins[i]) { return meta.share_colors[i]; } }
    return meta.share_colors[meta.share_colors.length - 1];
  }
  yz.districts = function (map, meta, geo, geoG) {
    var T = meta.i18n.text, lang = meta.i18n.lang;
    var layer = L.geoJSON(gcj(map) && geoG ? geoG : geo, {
      renderer: yz.renderer(map),
      style: function (f) {
        var p = f.properties || {};
        return {color: "#444c56", weight: 1, opacity: 0.8, fillColor: binColor(meta, p.share_pct), fillOpacity: 0.55};
      },
      onEachFeature: function (f, l) {
        l.bindTooltip(function () {
          var p = f.properties || {};
          var rows = [
            [T.f_share, p.share_pct === null || p.share_pct === undefined ? "—" : num(p.share_pct, lang, 1) + "%"],
            [T.f_demand, amount(meta, p.demand)],
            [T.f_covered, amount(meta, p.covered)]
          ];
          if (p.demand !== undefined && p.demand !== null && p.covered !== undefined && p.covered !== null) {
            rows.push([T.tbl_uncovered, amount(meta, p.demand - p.covered)]);
          }
          if (p.stations !== undefined && p.stations !== null) { rows.push([T.tbl_stations, num(p.stations, lang)]); }
          return propsBox(p.name === undefined || p.name === null ? "" : p.name, rows);
        }, {sticky: true});
      }
    });
    geoSwap(map, layer, geo, geoG);
    yz.stack(map, layer, 0);
    return layer;
  };

  // -- cooling buses ---------------------------------------------------------------------
  function hhmm(t) {
    var h = Math.floor(t / 60), m = Math.floor(t % 60);
    return (h < 10 ? "0" : "") + h + ":" + (m < 10 ? "0" : "") + m;
  }
  yz.hhmm = hhmm;

  // Where a stop (or a timeline interval, items 2-3 or 5-6) is in the system drawn.
  function stopAt(s, g) { return g && s.glat !== undefined ? [s.glat, s.glon] : [s.lat, s.lon]; }
  function spanAt(iv, g) { return g && iv.length > 6 ? [iv[5], iv[6]] : [iv[2], iv[3]]; }

  yz.buses = function (map, meta, data) {
    var T = meta.i18n.text, lang = meta.i18n.lang, R = yz.renderer(map);
    var group = L.featureGroup(), buses = [], g0 = gcj(map);
    data.buses.forEach(function (b) {
      var pts = b.stops.map(function (s) { return stopAt(s, g0); }), line = null, stopMarkers = [];
      if (pts.length > 1) {
        line = L.polyline(pts, {renderer: R, color: b.color, weight: 2.5, opacity: 0.8, dashArray: "6 5", interactive: false}).addTo(group);
      }
      b.stops.forEach(function (s) {
        var m = L.circleMarker(stopAt(s, g0), {renderer: R, radius: 5, color: b.color, weight: 2.5, fillColor: "#ffffff", fillOpacity: 1});
        m.yzS = s;
        stopMarkers.push(m);
        m.bindPopup(function () {
          var rows = [[T.f_bus, b.name]];
          if (b.plate) { rows.push([T.f_plate, b.plate]); }
          if (b.operator) { rows.push([T.f_operator, b.operator]); }
          rows.push([T.f_hours, s.hours || T.unknown]);
          return propsBox(s.name, rows);
        });
        m.addTo(group);
      });
      var icon = L.divIcon({className: "", iconSize: [28, 28], iconAnchor: [14, 14], html: (function () {
        var box = el("div", "yz-bus"); box.style.background = b.color; el("i", "fa-solid fa-bus", null, box); return box;
      })()});
      var marker = L.marker([0, 0], {icon: icon, zIndexOffset: 1000, keyboard: false});
      marker.bindTooltip(function () {
        var box = el("div", "yz-popup");
        el("div", "yz-title", b.name, box);
        if (marker.yzStop) { el("div", "yz-sub", T.f_stop + ": " + marker.yzStop, box); }
        return box;
      }, {direction: "top", offset: [0, -12]});
      buses.push({bus: b, marker: marker, line: line, stops: stopMarkers});
    });
    group.yz = {
      time: null,
      list: data.buses,
      setTime: function (t) {
        var n = 0, g = gcj(map);
        buses.forEach(function (x) {
          var iv = null;
          for (var i = 0; i < x.bus.timeline.length; i++) {
            var v = x.bus.timeline[i];
            if (v[0] <= t && t < v[1]) { iv = v; break; }
          }
          if (iv) {
            n++;
            x.marker.yzStop = iv[4];
            x.marker.setLatLng(spanAt(iv, g));
            if (!group.hasLayer(x.marker)) { group.addLayer(x.marker); }
          } else if (group.hasLayer(x.marker)) {
            group.removeLayer(x.marker);
          }
        });
        group.yz.time = t;
        return n;
      },
      // Show bus k: where it stands at the slider's time, else its stops.
      focus: function (k) {
        var x = buses[k];
        if (!map.hasLayer(group)) { map.addLayer(group); }
        if (group.hasLayer(x.marker)) {
          map.once("moveend", function () { x.marker.openTooltip(); });
          map.setView(x.marker.getLatLng(), Math.max(map.getZoom(), 15));
          x.marker.openTooltip();
          return;
        }
        var pts = x.stops.map(function (m) { return m.getLatLng(); });
        if (!pts.length) { return; }
        map.fitBounds(L.latLngBounds(pts), {maxZoom: 15, padding: [40, 40]});
        var box = el("div", "yz-popup");
        el("div", "yz-title", x.bus.name, box);
        el("div", "yz-sub", T.bus_not_now, box);
        L.popup({maxWidth: 320}).setLatLng(pts[0]).setContent(box).openOn(map);
      }
    };
    map.on("yz:crs", function () {
      var g = gcj(map);
      buses.forEach(function (x) {
        x.stops.forEach(function (m) { m.setLatLng(stopAt(m.yzS, g)); });
        if (x.line) { x.line.setLatLngs(x.bus.stops.map(function (s) { return stopAt(s, g); })); }
      });
      if (group.yz.time !== null) { group.yz.setTime(group.yz.time); }
    });
    yz.stack(map, group, 3);
    return group;
  };

  yz.busSlider = function (map, meta, busLayer, data) {
    var T = meta.i18n.text;
    var Ctl = L.Control.extend({
      options: {position: "bottomleft"},
      onAdd: function () {
        var box = L.DomUtil.create("div", "yz-slider");
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        var head = el("div", "yz-slider-row", null, box);
        el("b", null, T.layer_buses, head);
        if (data.date) { el("span", "yz-slider-count", T.timeline_date + " " + data.date, head); }
        var r = el("div", "yz-slider-row", null, box);
        var play = el("button", null, "▶", r);
        play.type = "button"; play.title = T.play; play.setAttribute("aria-label", T.play);
        var input = el("input", null, null, r);
        input.type = "range"; input.min = 0; input.max = 1435; input.step = 5; input.value = data.start;
        input.setAttribute("aria-label", T.time);
        var clock = el("span", "yz-slider-time", null, r);
        var count = el("div", "yz-slider-count", null, box);
        function update() {
          var t = +input.value, n = busLayer.yz.setTime(t);
          clock.textContent = hhmm(t);
          count.textContent = T.buses_in_service + ": " + n + " / " + data.buses.length;
        }
        var timer = null;
        play.addEventListener("click", function () {
          if (timer) { clearInterval(timer); timer = null; play.textContent = "▶"; play.title = T.play; return; }
          play.textContent = "❚❚"; play.title = T.pause;
          timer = setInterval(function () {
            input.value = (+input.value + 15) % 1440;
            update();
          }, 400);
        });
        input.addEventListener("input", update);
        update();
        this.yzInput = input;
        this.yzUpdate = update;
        return box;
      }
    });
    var ctl = new Ctl();
    function sync() {
      if (map.hasLayer(busLayer)) { ctl.addTo(map); } else { ctl.remove(); }
    }
    busLayer.on("add remove", sync);
    if (map.hasLayer(busLayer)) { ctl.addTo(map); }
    return ctl;
  };

  // -- controls ----------------------------------------------------------------------------
  yz.search = function (map, meta, stations, buses) {
    var T = meta.i18n.text;
    var Ctl = L.Control.extend({
      options: {position: "topleft"},
      onAdd: function () {
        var box = L.DomUtil.create("div", "leaflet-bar yz-search");
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        var input = el("input", null, null, box);
        input.type = "search"; input.placeholder = T.search_placeholder;
        input.title = T.search_title; input.setAttribute("aria-label", T.search_title);
        var list = el("ul", null, null, box);
        list.setAttribute("role", "listbox");
        var index = null;
        function fold(s) { s = String(s || ""); return (s.normalize ? s.normalize("NFKC") : s).toLowerCase(); }
        function run() {
          list.textContent = "";
          var q = fold(input.value).trim();
          if (!q) { return; }
          var d = stations.yz.data;
          if (!index) {
            index = new Array(d.name.length);
            for (var j = 0; j < index.length; j++) {
              index[j] = fold(d.name[j] + "\u0001" + (d.name_en ? d.name_en[j] : "") + "\u0001" + d.id[j]);
            }
          }
          var hits = 0;
          // Cooling buses first: a handful, and a bus is what a planner looks for by name.
          var fleet = buses && buses.yz ? buses.yz.list : [];
          for (var k = 0; k < fleet.length && hits < 12; k++) {
            var b = fleet[k];
            if (fold(b.name + "\u0001" + (b.plate || "") + "\u0001" + (b.id || "")).indexOf(q) < 0) { continue; }
            var lb = el("li", "yz-hit yz-hit-bus", b.name, list);
            lb.tabIndex = 0; lb.setAttribute("role", "option"); lb.yzBus = k;
            el("small", null, [T.search_bus, b.plate, b.operator].filter(Boolean).join(" · "), lb);
            hits++;
          }
          for (var i = 0; i < index.length && hits < 12; i++) {
            if (index[i].indexOf(q) < 0) { continue; }
            var li = el("li", "yz-hit", d.name[i], list);
            li.tabIndex = 0; li.setAttribute("role", "option"); li.yzI = i;
            var extra = [];
            if (d.name_en && d.name_en[i]) { extra.push(d.name_en[i]); }
            if (d.dist[i] >= 0) { extra.push(d.dist_tab[d.dist[i]]); }
            extra.push(d.id[i]);
            el("small", null, extra.join(" · "), li);
            hits++;
          }
          if (!hits) { el("li", "yz-none", T.search_none, list); }
        }
        var timer = null;
        input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(run, 120); });
        function pick(li) {
          if (!li) { return; }
          if (li.yzBus !== undefined) { buses.yz.focus(li.yzBus); }
          else if (li.yzI !== undefined) { stations.yz.focus(li.yzI); }
          else { return; }
          list.textContent = "";
        }
        list.addEventListener("click", function (e) {
          var t = e.target;
          while (t && t !== list && t.yzI === undefined && t.yzBus === undefined) { t = t.parentNode; }
          pick(t);
        });
        list.addEventListener("keydown", function (e) { if (e.key === "Enter") { pick(e.target); } });
        input.addEventListener("keydown", function (e) {
          if (e.key === "Enter") { clearTimeout(timer); run(); pick(list.firstChild); }
          if (e.key === "ArrowDown" && list.firstChild) { e.preventDefault(); list.firstChild.focus(); }
        });
        this.yzInput = input;
        this.yzList = list;
        return box;
      }
    });
    return new Ctl().addTo(map);
  };

  // The headline at the top: covered share, demand within reach, stations counted,
  // radius, time, what the demand is (text composed in yizhan/maps/headline.py).
  yz.headline = function (map, meta, h) {
    var box = L.DomUtil.create("div", "yz-headline", map.getContainer());
    box.setAttribute("role", "status");
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    el("div", "yz-hl-title", h.title, box);
    (h.lines || []).forEach(function (line) { el("div", "yz-hl-line", line, box); });
    if (h.note) { el("div", "yz-hl-note", h.note, box); }
    // A click folds it to its title (folded at first on a narrow screen).
    box.tabIndex = 0;
    function fold() { box.classList.toggle("yz-collapsed"); }
    box.addEventListener("click", fold);
    box.addEventListener("keydown", function (e) { if (e.key === "Enter") { fold(); } });
    if (window.matchMedia && window.matchMedia("(max-width: 900px)").matches) { fold(); }
    return box;
  };

  // The district table: sortable by any column (click a heading), a row zooms to its
  // district. Rows: {name, demand, covered, uncovered, share_pct, stations}.
  yz.districtTable = function (map, meta, rows, layer) {
    var T = meta.i18n.text, lang = meta.i18n.lang, digits = meta.digits || 0;
    var cols = [
      ["name", T.tbl_district, function (r) { return r.name; }],
      ["demand", T.tbl_demand, function (r) { return num(r.demand, lang, digits); }],
      ["share_pct", T.tbl_share, function (r) { return r.share_pct === null || r.share_pct === undefined ? "—" : num(r.share_pct, lang, 1, true) + "%"; }],
      ["uncovered", T.tbl_uncovered, function (r) { return num(r.uncovered, lang, digits); }],
      ["stations", T.tbl_stations, function (r) { return num(r.stations, lang); }]
    ];
    var state = {key: "uncovered", dir: -1};
    function cmp(a, b) {
      var x = a[state.key], y = b[state.key];
      var nx = x === null || x === undefined, ny = y === null || y === undefined;
      if (nx || ny) { return nx && ny ? 0 : nx ? 1 : -1; }  // unknown values last
      if (state.key === "name") { return state.dir * String(x).localeCompare(String(y), lang === "zh" ? "zh-CN" : "en"); }
      return state.dir * (x - y);
    }
    function zoomTo(name) {
      var hit = null;
      layer.eachLayer(function (l) { if (l.feature && l.feature.properties && l.feature.properties.name === name) { hit = l; } });
      if (!hit) { return; }
      if (!map.hasLayer(layer)) { map.addLayer(layer); }
      map.fitBounds(hit.getBounds(), {padding: [20, 20]});
    }
    var Ctl = L.Control.extend({
      options: {position: "bottomleft"},
      onAdd: function () {
        var box = L.DomUtil.create("div", "yz-districts");
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        var head = el("div", "yz-legend-head", null, box);
        el("span", null, fill(T.tbl_title, "n", num(rows.length, lang)), head);
        var btn = el("button", null, "−", head);
        btn.type = "button"; btn.setAttribute("aria-label", fill(T.tbl_title, "n", rows.length));
        head.addEventListener("click", function () {
          var c = box.classList.toggle("yz-collapsed");
          btn.textContent = c ? "+" : "−";
        });
        var body = el("div", "yz-legend-body", null, box);
        if (meta.unit) { el("div", "yz-sub", fill(T.tbl_unit, "unit", meta.unit), body); }
        var table = el("table", "yz-dtable", null, body);
        table.title = T.tbl_hint;
        var hr = el("tr", null, null, el("thead", null, null, table));
        var tbody = el("tbody", null, null, table);
        var ths = cols.map(function (c) {
          var th = el("th", null, null, hr);
          th.scope = "col";
          var b = el("button", null, c[1], th);
          b.type = "button"; b.yzKey = c[0];
          b.addEventListener("click", function () {
            if (state.key === c[0]) { state.dir = -state.dir; }
            else { state.key = c[0]; state.dir = c[0] === "name" ? 1 : -1; }
            render();
          });
          return th;
        });
        function render() {
          ths.forEach(function (th, k) {
            th.setAttribute("aria-sort", cols[k][0] === state.key ? (state.dir > 0 ? "ascending" : "descending") : "none");
          });
          tbody.textContent = "";
          rows.slice().sort(cmp).forEach(function (r) {
            var tr = el("tr", null, null, tbody);
            tr.tabIndex = 0;
            tr.yzName = r.name;
            cols.forEach(function (c) { el("td", null, c[2](r), tr); });
            tr.addEventListener("click", function () { zoomTo(r.name); });
            tr.addEventListener("keydown", function (e) { if (e.key === "Enter") { zoomTo(r.name); } });
          });
        }
        render();
        this.yzRender = render;
        this.yzState = state;
        return box;
      }
    });
    return new Ctl().addTo(map);
  };

  // Legend: entries are [kind, label, extra]; symbols are drawn with CSS only.
  yz.legend = function (map, meta, entries, position) {
    var T = meta.i18n.text;
    var Ctl = L.Control.extend({
      options: {position: position || "bottomright"},
      onAdd: function () {
        var box = L.DomUtil.create("div", "yz-legend");
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        var head = el("div", "yz-legend-head", null, box);
        el("span", null, T.legend, head);
        var btn = el("button", null, "−", head);
        btn.type = "button"; btn.setAttribute("aria-label", T.legend);
        head.addEventListener("click", function () {
          var c = box.classList.toggle("yz-collapsed");
          btn.textContent = c ? "+" : "−";
        });
        var body = el("div", "yz-legend-body", null, box);
        entries.forEach(function (e) {
          var kind = e[0], text = e[1], extra = e[2];
          if (kind === "title") { el("div", "yz-legend-sub", text, body); return; }
          var r = el("div", "yz-legend-row", null, body), s;
          if (kind === "site") { s = el("span", "yz-sym yz-site", "1", r); }
          if (kind === "proposal") { s = el("span", "yz-sym yz-proposal", "?", r); }
          else if (kind === "bus") { s = el("span", "yz-sym yz-bus", null, r); el("i", "fa-solid fa-bus", null, s); }
          else if (kind === "you") { s = el("span", "yz-sym yz-you", null, r); }
          else { s = el("span", "yz-sym yz-sym-" + kind, null, r); }
          if (extra && kind === "dot") { s.style.background = extra; }
          if (extra && (kind === "box" || kind === "stale")) { s.style.background = extra; }
          if (extra && kind === "stop") { s.className = "yz-sym yz-sym-dot"; s.style.background = "#fff"; s.style.border = "2.5px solid " + extra; }
          el("span", null, text, r);
        });
        return box;
      }
    });
    return new Ctl().addTo(map);
  };

  // -- worker map ----------------------------------------------------------------------------
  yz.workerYou = function (map, meta, data) {
    var icon = L.divIcon({className: "", iconSize: [18, 18], iconAnchor: [9, 9], html: el("div", "yz-you")});
    var m = L.marker([data.lat, data.lon], {icon: icon, zIndexOffset: 2000, keyboard: false});
    m.bindTooltip(meta.i18n.text.layer_you, {direction: "top", offset: [0, -8]});
    return L.featureGroup([m]);
  };

  yz.workerPopup = function (meta, h) {
    var I = meta.i18n, T = I.text, lang = I.lang;
    var box = el("div", "yz-popup");
    var title = lang === "en" && h.name_en ? h.name_en : h.name;
    var sub = lang === "en" && h.name_en ? h.name : h.name_en;
    el("div", "yz-title", title, box);
    if (sub && sub !== title) { el("div", "yz-sub", sub, box); }
    if (h.needs_check) { checkNote(box, meta, h.reasons); }
    if (h.stale) { staleNote(box, meta, h.verified, T.may_be_outdated); }
    var tb = table(box), td;
    function guessed(f) { return (h.guessed || []).indexOf(f) >= 0; }
    row(tb, T.f_rank, T.rank_n.replace("{n}", h.rank));
    row(tb, T.f_distance, h.distance_text + (h.direction ? " · " + h.direction : ""));
    if (h.category) { row(tb, T.f_category, I.categories[h.category] || h.category); }
    if (h.status && h.status !== "operational") { row(tb, T.f_status, I.statuses[h.status] || h.status); }
    td = row(tb, T.f_open_now, h.open_now === true ? T.open : h.open_now === false ? T.closed : T.unknown);
    td.className = h.open_now === true ? "yz-open" : h.open_now === false ? "yz-closed" : "yz-unknown";
    td = row(tb, T.f_hours, h.opening_hours || T.unknown);
    if (h.opening_hours && guessed("opening_hours")) { guessMark(td, T, lang); }
    var names = (h.amenities || []).map(function (a) { return I.amenities[a] || a; });
    td = row(tb, T.f_amenities, names.length ? names.join(lang === "zh" ? "、" : ", ") : T.none);
    if (guessed("amenities")) { guessMark(td, T, lang); }
    if (h.address) { row(tb, T.f_address, h.address); }
    if (h.verified && !h.stale) { row(tb, T.f_last_verified, h.verified); }
    el("div", "yz-sub", T.straight_line_note, box);
    return box;
  };

  yz.workerStations = function (map, meta, data) {
    var group = L.featureGroup();
    group.yz = {markers: []};
    data.hits.forEach(function (h) {
      var badge = el("div", "yz-rank" + (h.needs_check ? " yz-rank-check" : "") + (h.stale ? " yz-rank-stale" : ""), h.rank);
      badge.style.background = h.color;
      var icon = L.divIcon({className: "", iconSize: [24, 24], iconAnchor: [12, 12], popupAnchor: [0, -10], html: badge});
      var m = L.marker([h.lat, h.lon], {icon: icon, title: h.name, riseOnHover: true});
      m.bindPopup(function () { return yz.workerPopup(meta, h); }, {maxWidth: 320});
      group.addLayer(m);
      group.yz.markers.push(m);
    });
    return group;
  };

  yz.workerLines = function (map, meta, data) {
    var group = L.featureGroup(), R = yz.renderer(map);
    data.hits.forEach(function (h) {
      var line = L.polyline([[data.lat, data.lon], [h.lat, h.lon]], {
        renderer: R, color: h.color, weight: 3, opacity: 0.85, dashArray: "6 6", interactive: false
      });
      line.bindTooltip(h.distance_text, {permanent: true, direction: "center", className: "yz-dist", interactive: false});
      group.addLayer(line);
    });
    yz.stack(map, group, 0);
    return group;
  };

  yz.workerList = function (map, meta, data, stations) {
    var T = meta.i18n.text, lang = meta.i18n.lang;
    var Ctl = L.Control.extend({
      options: {position: "bottomleft"},
      onAdd: function () {
        var box = L.DomUtil.create("div", "yz-list");
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        el("b", null, T.layer_nearest, box);
        var ol = el("ol", null, null, box);
        data.hits.forEach(function (h, i) {
          var li = el("li", null, lang === "en" && h.name_en ? h.name_en : h.name, ol);
          el("span", null, " " + h.distance_text + (h.direction ? " " + h.direction : ""), li);
          if (h.needs_check) { el("span", "yz-li-warn", " ⚠ " + T.needs_check, li); }
          if (h.stale) { el("span", "yz-li-stale", " · " + meta.stale_text, li); }
          li.tabIndex = 0;
          function open() {
            if (!map.hasLayer(stations)) { map.addLayer(stations); }
            stations.yz.markers[i].openPopup();
          }
          li.addEventListener("click", open);
          li.addEventListener("keydown", function (e) { if (e.key === "Enter") { open(); } });
        });
        return box;
      }
    });
    return new Ctl().addTo(map);
  };

  return yz;
})();

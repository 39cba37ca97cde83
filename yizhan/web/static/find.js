(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("yz-data").textContent);
  var T = D.text;
  var statusEl = document.getElementById("yz-status");
  var mapEl = document.getElementById("yz-map");
  var mapBtn = document.getElementById("yz-map-btn");
  var mapBtnText = mapBtn.querySelector("span");
  var noteEl = document.getElementById("yz-map-note");
  var openLabel = mapBtnText.textContent;
  var ready = [];
  var drawn = false;
  var map = null;

  function say(text, warn) {
    statusEl.textContent = text;
    statusEl.className = warn ? "msg warn" : "msg";
    statusEl.hidden = false;
  }

  // Go to the list for a point (WGS-84), keeping the filters and the language.
  function go(lon, lat, src) {
    var u = new URL(window.location.href);
    u.pathname = "/find";
    u.searchParams.set("lon", lon.toFixed(6));
    u.searchParams.set("lat", lat.toFixed(6));
    u.searchParams.set("src", src);
    u.searchParams.set("lang", D.lang);
    u.searchParams.delete("district");
    window.location.assign(u.toString());
  }

  function locate() {
    if (!("geolocation" in navigator)) {
      say(T.locate_unsupported, true);
      return;
    }
    say(T.locating, false);
    navigator.geolocation.getCurrentPosition(
      function (p) { go(p.coords.longitude, p.coords.latitude, "gps"); },
      function () {
        say(T.locate_failed, true);
        document.getElementById("yz-district").open = true;
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
    );
  }

  // Leaflet is loaded only when the worker opens the map: the list never waits for it.
  function loadLeaflet(done, fail) {
    if (window.L) { done(); return; }
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = D.leaflet.css;
    document.head.appendChild(css);
    var s = document.createElement("script");
    s.src = D.leaflet.js;
    s.onload = done;
    s.onerror = fail;
    document.head.appendChild(s);
  }

  // Text from the registry goes into the map as text nodes, never as HTML.
  function span(text, cls) {
    var el = document.createElement("span");
    if (cls) { el.className = cls; }
    el.textContent = text;
    return el;
  }

  function jumpTo(rank) {
    var card = document.getElementById("r-" + rank);
    if (!card) { return; }
    card.scrollIntoView({ block: "start" });
    card.focus({ preventScroll: true });
    card.classList.add("hl");
    window.setTimeout(function () { card.classList.remove("hl"); }, 2000);
  }

  // What the server knows of the area (district outlines, station dots and names): the
  // picture under the tiles, and the whole picture when the tiles cannot load.
  function drawBasemap(m) {
    var c = D.here || D.centre;
    var url = D.basemap + "?lon=" + c[0].toFixed(1) + "&lat=" + c[1].toFixed(1);
    return fetch(url).then(function (r) {
      if (!r.ok) { throw new Error("basemap " + r.status); }
      return r.json();
    }).then(function (b) {
      // Below the result pins and the worker's dot; the places listed have their own pins.
      m.createPane("yzBase").style.zIndex = 450;
      var listed = {};
      D.results.forEach(function (r) { listed[r.id] = true; });
      L.geoJSON(b.districts, {
        interactive: false,
        style: function (f) {
          return { color: "#6b6b66", weight: 1.5, fillColor: "#9a9a90", fillOpacity: 0.05,
            dashArray: f.properties.hull ? "4 4" : null };
        }
      }).addTo(m);
      b.districts.features.forEach(function (f) {
        var p = f.properties.label;
        L.marker([p[1], p[0]], { interactive: false, keyboard: false, pane: "yzBase",
          icon: L.divIcon({ className: "yz-dlabel", html: span(f.properties.name), iconSize: null })
        }).addTo(m);
      });
      var labels = L.layerGroup();
      b.stations.forEach(function (s) {
        if (listed[s[3]]) { return; }
        L.circleMarker([s[1], s[0]], { radius: 4, weight: 1, color: "#fff",
          fillColor: "#5a5a55", fillOpacity: 0.9, interactive: false }).addTo(m);
        labels.addLayer(L.marker([s[1], s[0]], { interactive: false, keyboard: false, pane: "yzBase",
          icon: L.divIcon({ className: "yz-slabel", html: span(s[2]), iconSize: null,
            iconAnchor: [-6, 8] }) }));
      });
      function zoomLabels() {
        if (m.getZoom() >= 14) { labels.addTo(m); } else { labels.remove(); }
      }
      m.on("zoomend", zoomLabels);
      zoomLabels();
      mapEl.setAttribute("data-basemap", String(b.stations.length));
    }).catch(function () { mapEl.setAttribute("data-basemap", "failed"); });
  }

  function showMap() {
    mapEl.hidden = false;
    mapBtn.setAttribute("aria-expanded", "true");
    mapBtnText.textContent = T.hide_map;
    if (map) { map.invalidateSize(); return; }
    if (!D.results.length) { say(T.map_tap_hint, false); }
    loadLeaflet(function () {
      var c = D.here || D.centre;
      map = L.map(mapEl, { zoomControl: true }).setView([c[1], c[0]], D.here ? 14 : 12);
      var tiles = L.tileLayer(D.tiles.url, { attribution: D.tiles.attr, maxZoom: 19 });
      var loaded = 0;
      var failed = 0;
      tiles.on("tileload", function () { loaded += 1; });
      tiles.on("tileerror", function () {
        failed += 1;
        if (!loaded && noteEl.hidden) {
          mapEl.classList.add("notiles");
          noteEl.textContent = T.map_offline;
          noteEl.hidden = false;
        }
      });
      tiles.addTo(map);
      var basemap = drawBasemap(map);
      var bounds = [];
      if (D.here) {
        L.circleMarker([D.here[1], D.here[0]], { radius: 9, color: "#fff", weight: 3,
          fillColor: "#0b57d0", fillOpacity: 1 })
          .bindTooltip(span(T.you_are_here), { direction: "left" }).addTo(map);
        bounds.push([D.here[1], D.here[0]]);
      }
      D.results.forEach(function (r) {
        var pin = L.marker([r.lat, r.lon], {
          title: r.rank + ". " + r.name,
          icon: L.divIcon({ className: "yz-pin" + (r.bus ? " bus" : ""), html: span(String(r.rank)),
            iconSize: [30, 30], iconAnchor: [15, 15] })
        });
        // Above the pin, so that a name never covers the next pin (tooltips take no taps).
        pin.bindTooltip(span(r.rank + ". " + r.name), { permanent: D.results.length <= 6,
          direction: "top", offset: [0, -14], className: "yz-tip" });
        pin.on("click", function () { jumpTo(r.rank); });
        pin.addTo(map);
        pin.getElement().setAttribute("data-rank", String(r.rank));
        bounds.push([r.lat, r.lon]);
      });
      if (bounds.length > 1) { map.fitBounds(bounds, { padding: [30, 30], maxZoom: 16 }); }
      map.on("click", function (e) { go(e.latlng.lng, e.latlng.lat, "map"); });
      basemap.then(function () {
        drawn = true;
        ready.forEach(function (f) { f(); });
        ready = [];
      });
      window.yz.failedTiles = function () { return failed; };
    }, function () {
      mapEl.hidden = true;
      say(T.map_failed, true);
      document.getElementById("yz-district").open = true;
    });
  }

  function hideMap() {
    mapEl.hidden = true;
    noteEl.hidden = true;
    mapBtn.setAttribute("aria-expanded", "false");
    mapBtnText.textContent = openLabel;
  }

  document.getElementById("yz-locate").addEventListener("click", locate);
  mapBtn.addEventListener("click", function () {
    if (mapEl.hidden) { showMap(); } else { hideMap(); }
  });
  var select = document.getElementById("yz-district-select");
  if (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  }
  window.yz = {
    map: function () { return map; },
    whenMap: function () {
      return new Promise(function (res) { if (drawn) { res(); } else { ready.push(res); } });
    }
  };
  if (D.autoLocate) { locate(); }
})();

(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("yz-data").textContent);
  var T = D.text;
  var statusEl = document.getElementById("yz-status");
  var mapEl = document.getElementById("yz-map");
  var mapBtn = document.getElementById("yz-map-btn");
  var ready = [];
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

  function tip(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span;
  }

  function showMap() {
    mapEl.hidden = false;
    mapBtn.setAttribute("aria-expanded", "true");
    mapBtn.textContent = T.hide_map;
    if (map) { map.invalidateSize(); return; }
    say(T.map_tap_hint, false);
    loadLeaflet(function () {
      var c = D.here || D.centre;
      map = L.map(mapEl, { zoomControl: true }).setView([c[1], c[0]], D.here ? 14 : 12);
      L.tileLayer(D.tiles.url, { attribution: D.tiles.attr, maxZoom: 19 }).addTo(map);
      if (D.here) {
        L.circleMarker([D.here[1], D.here[0]], { radius: 9, color: "#fff", weight: 3,
          fillColor: "#0b57d0", fillOpacity: 1 }).addTo(map);
      }
      D.results.forEach(function (r) {
        L.circleMarker([r.lat, r.lon], { radius: 11, color: "#1d1d1f", weight: 2,
          fillColor: r.bus ? "#0aa" : "#1b6e3a", fillOpacity: 0.9 })
          .bindTooltip(tip(r.rank + ". " + r.name), { permanent: D.results.length <= 6,
            direction: "right" })
          .on("click", function () { window.location.assign(r.href); })
          .addTo(map);
      });
      map.on("click", function (e) { go(e.latlng.lng, e.latlng.lat, "map"); });
      ready.forEach(function (f) { f(); });
    }, function () {
      mapEl.hidden = true;
      say(T.map_failed, true);
      document.getElementById("yz-district").open = true;
    });
  }

  function hideMap() {
    mapEl.hidden = true;
    mapBtn.setAttribute("aria-expanded", "false");
    mapBtn.textContent = T.pick_on_map;
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
      return new Promise(function (res) { if (map) { res(); } else { ready.push(res); } });
    }
  };
  if (D.autoLocate) { locate(); }
})();

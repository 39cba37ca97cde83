(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("yz-data").textContent);
  var T = D.text;
  var form = document.getElementById("yz-suggest-form");
  var msg = document.getElementById("yz-s-msg");
  var placeEl = document.getElementById("yz-s-place");
  var mapEl = document.getElementById("yz-map");
  var send = document.getElementById("yz-s-send");
  var place = D.here ? { lon: D.here[0], lat: D.here[1], src: D.src || "gps" } : null;
  var map = null;
  var pin = null;

  function say(text, warn) {
    msg.textContent = text;
    msg.className = warn ? "msg warn" : "msg";
    msg.hidden = false;
  }

  function setPlace(lon, lat, src) {
    place = { lon: lon, lat: lat, src: src };
    placeEl.textContent = T.suggest_place_set.replace("{lon}", lon.toFixed(5))
      .replace("{lat}", lat.toFixed(5));
    if (map) {
      if (pin) { pin.setLatLng([lat, lon]); } else { pin = L.marker([lat, lon]).addTo(map); }
    }
  }

  document.getElementById("yz-s-gps").addEventListener("click", function () {
    if (!("geolocation" in navigator)) { say(T.locate_unsupported, true); return; }
    say(T.locating, false);
    navigator.geolocation.getCurrentPosition(function (p) {
      msg.hidden = true;
      setPlace(p.coords.longitude, p.coords.latitude, "gps");
    }, function () { say(T.locate_failed, true); },
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  });

  function span(text, cls) {
    var el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    return el;
  }

  document.getElementById("yz-s-map-btn").addEventListener("click", function () {
    mapEl.hidden = false;
    if (map) { map.invalidateSize(); return; }
    say(T.map_tap_hint, false);
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = D.leaflet.css;
    document.head.appendChild(css);
    var s = document.createElement("script");
    s.src = D.leaflet.js;
    s.onerror = function () { mapEl.hidden = true; say(T.map_failed, true); };
    s.onload = function () {
      var c = place ? [place.lon, place.lat] : D.centre;
      map = L.map(mapEl).setView([c[1], c[0]], place ? 16 : 12);
      L.tileLayer(D.tiles.url, { attribution: D.tiles.attr, maxZoom: 19 }).addTo(map);
      // The server's own outlines and stations: a tap is not a tap in a grey box offline.
      fetch(D.basemap + "?lon=" + c[0].toFixed(1) + "&lat=" + c[1].toFixed(1))
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (b) {
          if (!b) { return; }
          L.geoJSON(b.districts, { interactive: false,
            style: { color: "#6b6b66", weight: 1.5, fillOpacity: 0.05 } }).addTo(map);
          b.districts.features.forEach(function (f) {
            var p = f.properties.label;
            L.marker([p[1], p[0]], { interactive: false, keyboard: false,
              icon: L.divIcon({ className: "yz-dlabel", html: span(f.properties.name, ""),
                iconSize: null }) }).addTo(map);
          });
          b.stations.forEach(function (st) {
            L.circleMarker([st[1], st[0]], { radius: 4, weight: 1, color: "#fff",
              fillColor: "#5a5a55", fillOpacity: 0.9, interactive: false }).addTo(map);
          });
        }, function () { /* the tiles may still be there */ });
      if (place) { pin = L.marker([place.lat, place.lon]).addTo(map); }
      map.on("click", function (e) {
        msg.hidden = true;
        setPlace(e.latlng.lng, e.latlng.lat, "map");
      });
    };
    document.head.appendChild(s);
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var name = form.elements.name.value.trim();
    if (!name) { form.elements.name.focus(); say(T.suggest_error, true); return; }
    if (!place) { say(T.suggest_need_place, true); return; }
    var body = {
      name: name.slice(0, 200),
      location: [Number(place.lon.toFixed(6)), Number(place.lat.toFixed(6))],
      location_source: place.src,
      amenities: Array.prototype.map.call(
        form.querySelectorAll("input[name=amenities]:checked"), function (c) { return c.value; })
    };
    var hours = form.elements.hours.value.trim();
    if (hours) { body.hours = hours.slice(0, 500); }
    var comment = form.elements.comment.value.trim();
    if (comment) { body.comment = comment.slice(0, 1000); }
    send.disabled = true;
    say(T.suggest_sending, false);
    fetch("/proposals", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      send.disabled = false;
      if (r.status === 201) {
        form.reset();
        say(T.suggest_thanks, false);
      } else if (r.status === 429) {
        say(T.suggest_rate_limited, true);
      } else {
        say(T.suggest_error + " (" + r.status + ")", true);
      }
    }, function () {
      send.disabled = false;
      say(T.suggest_offline, true);
    });
  });
})();

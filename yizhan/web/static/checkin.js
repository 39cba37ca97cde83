(function () {
  "use strict";
  // "I'm here" (POST /stations/{id}/checkins) and the station's photos (issue 13).
  var box = document.getElementById("yz-checkin");
  if (!box || !window.fetch) { return; }
  var D = box.dataset;
  var btn = document.getElementById("yz-here");
  var msg = document.getElementById("yz-checkin-msg");
  var trade = document.getElementById("yz-trade");
  var origin = null;
  try { origin = JSON.parse(document.getElementById("yz-data").textContent).origin; } catch (e) { origin = null; }

  function say(text, warn) {
    msg.textContent = text;
    msg.className = warn ? "msg warn" : "msg";
    msg.hidden = false;
  }

  function send(location) {
    var body = {};
    if (location) { body.location = location; }
    if (trade.value) { body.trade = trade.value; }
    fetch(D.url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      btn.disabled = false;
      if (r.status === 201) { say(D.tThanks, false); }
      else if (r.status === 429) { say(D.tAgain, true); }
      else if (r.status === 422) { say(D.tFar, true); }
      else if (r.status === 409) { say(D.tClosed, true); }
      else { say(D.tError + " (" + r.status + ")", true); }
    }, function () {
      btn.disabled = false;
      say(D.tOffline, true);
    });
  }

  btn.addEventListener("click", function () {
    btn.disabled = true;
    say(D.tSending, false);
    if (origin) { send(origin); return; }
    if (!navigator.geolocation) { send(null); return; }
    navigator.geolocation.getCurrentPosition(function (p) {
      send([Math.round(p.coords.longitude * 1e6) / 1e6, Math.round(p.coords.latitude * 1e6) / 1e6]);
    }, function () { send(null); }, { timeout: 8000, maximumAge: 120000 });
  });

  var section = document.getElementById("yz-photos");
  fetch(D.photos).then(function (r) { return r.ok ? r.json() : null; }).then(function (j) {
    if (!j || !j.photos || !j.photos.length) { return; }
    var row = section.querySelector(".row");
    j.photos.slice(0, 6).forEach(function (p) {
      var fig = document.createElement("figure");
      var a = document.createElement("a");
      a.href = p.url;
      var img = document.createElement("img");
      img.src = p.thumbnail_url;
      img.alt = "";
      img.loading = "lazy";
      img.style.maxWidth = "100%";
      img.style.height = "auto";
      a.appendChild(img);
      var cap = document.createElement("figcaption");
      cap.className = "meta";
      cap.textContent = D.tTaken.replace("{date}", p.taken_on);
      fig.appendChild(a);
      fig.appendChild(cap);
      row.appendChild(fig);
    });
    section.hidden = false;
  }, function () { /* no photos offline */ });
})();

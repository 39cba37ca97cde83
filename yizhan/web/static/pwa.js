(function () {
  "use strict";
  // The installable app: the service worker (/sw.js) keeps the pages, their assets and
  // the last results. A page it answers from its cache says so ("as of 07:48") and is
  // fetched again as soon as the signal returns.
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").catch(function () { /* http:// on a LAN */ });
  }
  var body = document.body;
  var banner = document.getElementById("yz-offline");
  if (body.getAttribute("data-yz-live") !== "0" || !banner) { return; }
  var time = body.getAttribute("data-yz-time") || "";
  var day = body.getAttribute("data-yz-date") || "";
  var now = new Date();
  var today = now.getFullYear() + "-" + ("0" + (now.getMonth() + 1)).slice(-2) + "-" +
    ("0" + now.getDate()).slice(-2);
  if (day && time && day !== today) {
    // Saved on another day: say which (the text node holds the time).
    var node = banner.firstChild;
    node.textContent = node.textContent.replace(time, day.slice(5) + " " + time);
  }
  // Results for another position than the one asked for (the last ones kept).
  var asked = new URL(window.location.href).searchParams;
  var data = document.getElementById("yz-data");
  var here = data ? JSON.parse(data.textContent).here : null;
  if (here && asked.get("lon") && asked.get("lat") &&
      (Math.abs(Number(asked.get("lon")) - here[0]) > 1e-5 ||
       Math.abs(Number(asked.get("lat")) - here[1]) > 1e-5)) {
    document.getElementById("yz-elsewhere").hidden = false;
  }
  banner.hidden = false;
  var retrying = false;
  function retry() {
    if (retrying) { return; }
    retrying = true;
    fetch("/health", { cache: "no-store" }).then(function (r) {
      if (r.ok) { window.location.reload(); } else { retrying = false; }
    }, function () { retrying = false; });
  }
  window.addEventListener("online", retry);
  window.setInterval(retry, 15000);
})();

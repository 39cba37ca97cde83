/* Yizhan's service worker: the workers' pages on a weak signal or none.
 *
 * Pages (/, /find, /s/{id}, /suggest): network first; when the network fails, or says
 * nothing for TIMEOUT_MS, the copy kept from the last time is shown, marked as such
 * (data-yz-live="0": the page says "as of 07:48" and retries when the signal returns).
 * /, /find without a position and any /find that was never kept show the last results.
 * Versioned assets (/static/vendor/<name>-<version>/, as Leaflet) and the app's icons: cache
 * first. The map's basemap: network first. Anything else (the planner maps' own runtime,
 * the API) is left to the network.
 * Requests to other servers (map tiles, navigation apps) are not touched.
 */
"use strict";
var VERSION = "__VERSION__";
var TEXT = __TEXT__;
var PAGES = "yz-pages-v1";
var ASSETS = "yz-assets-" + VERSION;
var LAST = "/__yizhan/last-results";
var TIMEOUT_MS = 6000;
var MAX_PAGES = 40;
var VERSIONED = /^\/static\/(vendor\/[^\/]*-\d[^\/]*\/|app\/)/;

function isPage(url) {
  var p = url.pathname;
  return p === "/" || p === "/find" || p === "/suggest" ||
    (p.indexOf("/s/") === 0 && !/\/poster$/.test(p));
}

function hasResults(url) {
  var q = url.searchParams;
  return (url.pathname === "/" || url.pathname === "/find") &&
    ((q.has("lon") && q.has("lat")) || q.has("district"));
}

function keep(url, resp) {
  var type = resp.headers.get("Content-Type") || "";
  if (!resp.ok || type.indexOf("text/html") !== 0) { return Promise.resolve(); }
  return caches.open(PAGES).then(function (c) {
    var puts = [c.put(url.href, resp.clone())];
    if (hasResults(url)) { puts.push(c.put(LAST, resp.clone())); }
    return Promise.all(puts).then(function () { return c.keys(); }).then(function (keys) {
      var extra = keys.length - MAX_PAGES;
      var drop = [];
      for (var i = 0; i < keys.length && drop.length < extra; i++) {
        if (new URL(keys[i].url).pathname !== LAST) { drop.push(c.delete(keys[i])); }
      }
      return Promise.all(drop);
    });
  });
}

function fetchAndKeep(url) {
  return fetch(url.href, { credentials: "same-origin" }).then(function (resp) {
    return keep(url, resp.clone()).then(function () { return resp; });
  });
}

function marked(resp) {
  var headers = new Headers(resp.headers);
  headers.delete("Content-Encoding");
  headers.delete("Content-Length");
  return resp.text().then(function (html) {
    return new Response(html.replace('data-yz-live="1"', 'data-yz-live="0"'), {
      status: 200,
      headers: headers
    });
  });
}

function saved(url) {
  return caches.open(PAGES).then(function (c) {
    var opts = { ignoreVary: true };
    var bare = (url.pathname === "/" || url.pathname === "/find") && !hasResults(url);
    var first = bare ? c.match(LAST, opts) : c.match(url.href, opts);
    return first.then(function (hit) {
      if (hit) { return hit; }
      if (url.pathname === "/" || url.pathname === "/find") {
        return c.match(bare ? url.href : LAST, opts);
      }
      return undefined;
    });
  }).then(function (hit) { return hit ? marked(hit) : undefined; });
}

function offlinePage(url) {
  var zh = url.searchParams.get("lang") !== "en";
  var t = TEXT[zh ? "zh" : "en"];
  var html = "<!doctype html><html lang=\"" + (zh ? "zh-CN" : "en") + "\"><head>" +
    "<meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">" +
    "<title>" + t.offline_page + "</title></head>" +
    "<body style=\"font:17px/1.45 system-ui,sans-serif;margin:16px\" data-yz-live=\"0\">" +
    "<h1 id=\"yz-offline-page\">" + t.offline_page + "</h1><p>" + t.offline_text + "</p>" +
    "<p><a href=\"/find?lang=" + (zh ? "zh" : "en") + "\">" + t.offline_last + "</a></p></body></html>";
  return new Response(html, {
    status: 503,
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"
    }
  });
}

function page(req, url) {
  var net = fetch(req).then(function (resp) {
    return keep(url, resp.clone()).then(function () { return resp; }, function () { return resp; });
  });
  var timer = new Promise(function (res) { setTimeout(res, TIMEOUT_MS, null); });
  return Promise.race([net.catch(function () { return null; }), timer]).then(function (resp) {
    if (resp) { return resp; }
    return saved(url).then(function (hit) {
      if (hit) { return hit; }
      return net.catch(function () { return offlinePage(url); });
    });
  });
}

function cacheFirst(req) {
  return caches.open(ASSETS).then(function (c) {
    return c.match(req).then(function (hit) {
      return hit || fetch(req).then(function (resp) {
        if (resp.ok) { c.put(req, resp.clone()); }
        return resp;
      });
    });
  });
}

function networkFirst(req) {
  return caches.open(ASSETS).then(function (c) {
    return fetch(req).then(function (resp) {
      if (resp.ok) { c.put(req, resp.clone()); }
      return resp;
    }, function () {
      return c.match(req).then(function (hit) { return hit || Response.error(); });
    });
  });
}

self.addEventListener("install", function () { self.skipWaiting(); });

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) {
      return k.indexOf("yz-assets-") === 0 && k !== ASSETS;
    }).map(function (k) { return caches.delete(k); }));
  }).then(function () {
    return self.clients.claim();
  }).then(function () {
    return self.clients.matchAll({ type: "window" });
  }).then(function (wins) {
    // The page that installed the worker was loaded before it: keep a copy now.
    return Promise.all(wins.map(function (w) {
      var url = new URL(w.url);
      if (url.origin !== self.location.origin || !isPage(url)) { return null; }
      return fetchAndKeep(url).catch(function () { return null; });
    }));
  }));
});

self.addEventListener("fetch", function (event) {
  var req = event.request;
  if (req.method !== "GET") { return; }
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) { return; }
  if (req.mode === "navigate") {
    if (isPage(url)) { event.respondWith(page(req, url)); }
    return;
  }
  if (VERSIONED.test(url.pathname)) {
    event.respondWith(cacheFirst(req));
  } else if (url.pathname === "/find/basemap.json") {
    event.respondWith(networkFirst(req));
  }
});

"""HTML views of the OGC API documents (conformance class ``html``).

Each JSON document (landing page, conformance, collections, a collection, a page of items,
one item) is rendered as a small page with the same links, escaped by Jinja2's
autoescaping; item pages show the features in a table and on a Leaflet map (the map's
assets are the ones the planner maps use, served at ``/static/vendor``; without network
the background tiles stay grey, the features are still drawn).
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, select_autoescape

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))

_LAYOUT = """<!doctype html>
<html lang="zh-Hans"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · Yizhan OGC API</title>
<style>
body{font:15px/1.45 system-ui,"Noto Sans CJK SC",sans-serif;margin:0;color:#1d2733}
header{background:#0b5d4b;color:#fff;padding:.6rem 1.2rem}
header a{color:#fff}
main{padding:1rem 1.2rem;max-width:80rem}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border-bottom:1px solid #dde3ea;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f5f8}
nav.crumbs a{margin-right:.3rem}
#map{height:380px;border:1px solid #ccd;margin:.6rem 0}
.links li{margin:.15rem 0}
code{background:#f2f5f8;padding:0 .2rem}
.pager a{margin-right:1rem}
</style>
{% if features is defined %}
<link rel="stylesheet" href="{{ root }}static/vendor/leaflet-1.9.4/dist/leaflet.css">
<script src="{{ root }}static/vendor/leaflet-1.9.4/dist/leaflet.js"></script>
{% endif %}
</head><body>
<header><strong>Yizhan 驿站</strong> · OGC API – Features ·
<nav class="crumbs" style="display:inline">
<a href="{{ base }}?f=html">Landing page</a>›<a href="{{ base }}/collections?f=html">Collections</a>
{% if collection_id %}›<a href="{{ base }}/collections/{{ collection_id }}?f=html">{{ collection_id }}</a>{% endif %}
</nav></header>
<main>
<h1>{{ title }}</h1>
{% block body %}{% endblock %}
<h2>Links</h2>
<ul class="links">{% for l in links %}<li><a href="{{ l.href }}">{{ l.title or l.rel }}</a>
<small>({{ l.rel }}, {{ l.type }})</small></li>{% endfor %}</ul>
</main></body></html>
"""

_LANDING = _LAYOUT.replace("{% block body %}{% endblock %}", "<p>{{ doc.description }}</p>")

_CONFORMANCE = _LAYOUT.replace(
    "{% block body %}{% endblock %}",
    "<ul>{% for c in doc.conformsTo %}<li><code>{{ c }}</code></li>{% endfor %}</ul>",
)

_COLLECTIONS = _LAYOUT.replace(
    "{% block body %}{% endblock %}",
    """<table><tr><th>Collection</th><th>Description</th><th>Items</th></tr>
{% for c in doc.collections %}<tr><td><a href="{{ base }}/collections/{{ c.id }}?f=html">{{ c.title }}</a>
<br><code>{{ c.id }}</code></td><td>{{ c.description }}</td>
<td><a href="{{ base }}/collections/{{ c.id }}/items?f=html">browse</a> ·
<a href="{{ base }}/collections/{{ c.id }}/items?f=json">GeoJSON</a></td></tr>{% endfor %}</table>""",
)

_COLLECTION = _LAYOUT.replace(
    "{% block body %}{% endblock %}",
    """<p>{{ doc.description }}</p>
<p><a href="{{ base }}/collections/{{ doc.id }}/items?f=html">Browse the items</a> ·
<a href="{{ base }}/collections/{{ doc.id }}/items?f=json">GeoJSON</a> ·
<a href="{{ base }}/collections/{{ doc.id }}/queryables">Queryables</a></p>
{% if doc.extent and doc.extent.spatial %}<p>Extent (lon/lat):
<code>{{ doc.extent.spatial.bbox[0] | join(", ") }}</code></p>{% endif %}""",
)

_ITEMS = _LAYOUT.replace(
    "{% block body %}{% endblock %}",
    """<p>{{ matched }} matched, {{ returned }} shown.
{% if filter_text %}Filter: <code>{{ filter_text }}</code>{% endif %}</p>
<p class="pager">{% for l in links %}{% if l.rel in ("prev", "next") %}
<a href="{{ l.href | replace("f=json", "f=html") }}">{{ "← previous" if l.rel == "prev" else "next →" }}</a>
{% endif %}{% endfor %}</p>
<div id="map"></div>
<table><tr><th>id</th>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for f in features %}<tr><td><a href="{{ items_url }}/{{ f.id | string | urlencode }}?f=html">{{ f.id }}</a></td>
{% for c in columns %}<td>{{ show(f.properties.get(c)) }}</td>{% endfor %}</tr>{% endfor %}</table>
<script>
(function(){
  if (typeof L === "undefined") return;
  var data = {{ collection | tojson }};
  var map = L.map("map");
  L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    {maxZoom: 19, attribution: "&copy; OpenStreetMap contributors"}).addTo(map);
  var layer = L.geoJSON(data, {
    pointToLayer: function(f, ll){ return L.circleMarker(ll, {radius: 6, color: "#0b5d4b", fillOpacity: .7}); },
    onEachFeature: function(f, l){ l.bindTooltip(String(f.properties.name || f.id)); }
  }).addTo(map);
  var b = layer.getBounds();
  if (b.isValid()) map.fitBounds(b.pad(0.05)); else map.setView([34.75, 113.65], 11);
})();
</script>""",
)


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


_env.globals["show"] = _show

_T = {
    "landing": _env.from_string(_LANDING),
    "conformance": _env.from_string(_CONFORMANCE),
    "collections": _env.from_string(_COLLECTIONS),
    "collection": _env.from_string(_COLLECTION),
    "items": _env.from_string(_ITEMS),
}

#: Columns shown first in item tables when a collection has them.
PREFERRED_COLUMNS = (
    "name",
    "kind",
    "category",
    "district",
    "status",
    "open_now",
    "next_change",
    "amenities",
    "stale",
    "stop_name",
    "leaves_at",
    "share_pct",
    "demand",
    "stations",
    "rank",
    "area_m2",
)


def render(kind: str, doc: dict[str, Any], *, base: str, root: str, **extra: Any) -> str:
    """The HTML page of document *doc* (``landing``, ``conformance``, ``collections`` or
    ``collection``); *base* is the API's URL, *root* the server's."""
    title = extra.pop("title", None) or doc.get("title") or kind.title()
    return _T[kind].render(
        doc=doc, title=title, base=base, root=root, links=doc.get("links", []), **extra
    )


def render_items(
    doc: dict[str, Any],
    *,
    base: str,
    root: str,
    collection_id: str,
    title: str,
    filter_text: str | None = None,
) -> str:
    """A page of items (or one item, *doc* being a Feature) as a table and a map."""
    feats = doc["features"] if doc.get("type") == "FeatureCollection" else [doc]
    keys: dict[str, None] = {}
    for f in feats:
        keys.update(dict.fromkeys(f.get("properties") or {}))
    columns = [c for c in PREFERRED_COLUMNS if c in keys] or list(keys)[:8]
    collection = {"type": "FeatureCollection", "features": feats}
    return _T["items"].render(
        doc=doc,
        title=title,
        base=base,
        root=root,
        links=doc.get("links", []),
        collection_id=collection_id,
        features=feats,
        columns=columns,
        collection=collection,
        matched=doc.get("numberMatched", len(feats)),
        returned=doc.get("numberReturned", len(feats)),
        items_url=f"{base}/collections/{collection_id}/items",
        filter_text=filter_text,
    )

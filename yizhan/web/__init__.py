"""The workers' web pages: find a station (``/``, ``/find``), one station (``/s/{id}``),
printable posters (``/s/{id}/poster``, ``yizhan poster``) and suggest a place
(``/suggest``), installable as an app that works offline. Templates, the inlined CSS and
JavaScript, the service worker and the icons live beside this package;
:mod:`yizhan.web.views` (shared pieces, station page, poster), :mod:`yizhan.web.find` (the
find page) and :mod:`yizhan.web.pwa` (manifest, service worker) compute what they show.

May import ``query/``, ``stations/``, ``geo/``, ``settings``, ``errors`` and the shared
labels of ``maps/`` (vocabulary in two languages); never FastAPI (``routes/pages.py``
serves these pages).
"""

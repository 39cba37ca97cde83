"""The workers' web pages: find a station (``/``, ``/find``), one station (``/s/{id}``) and
printable posters (``/s/{id}/poster``, ``yizhan poster``). Templates and the inlined CSS and
JavaScript live beside this package; :mod:`yizhan.web.views` computes what they show.

May import ``query/``, ``stations/``, ``geo/``, ``settings``, ``errors`` and the shared
labels of ``maps/`` (vocabulary in two languages); never FastAPI (``routes/pages.py``
serves these pages).
"""

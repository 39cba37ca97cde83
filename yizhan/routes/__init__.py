"""HTTP routers, one per resource: thin adapters that parse a request, call ``query/`` (or a
store in ``stations/``) and shape the response.

Only this package and ``yizhan.api`` import FastAPI. May import ``web/``, ``maps/``,
``query/``, ``stations/``, ``geo/``, ``settings`` and ``errors``.
"""

"""The answers every interface gives: the API, the workers' pages, the maps and the CLI.

Holds nearest as GeoJSON (:mod:`.nearest`), station listings with bbox/text/district
filters (:mod:`.listing`), features with their computed properties (``open_now``,
``next_change``, ``stale``, ``needs_check``; :mod:`.features`), the search wired to its
stores (:mod:`.search`), studies (demand, districts; :mod:`.studies`,
:mod:`.demand_files`), what an "open now" search left out and the registry's area
(:mod:`.nearby`), the picture a map draws without tiles (:mod:`.basemap`) and proposed
stations: their area, who decides, the station an accepted one becomes, GeoJSON
(:mod:`.proposals`), analyses run in bounded, time- and memory-limited processes
(:mod:`.analysis`), and walking along streets: the loaded network, nearest on foot and
isochrones (:mod:`.walking`), coverage, gaps, siting and the map's layers on foot
(:mod:`.walk_studies`) and those analyses as the analysis processes run them
(:mod:`.walk_analysis`).

May import ``yizhan.stations``, ``yizhan.network``, ``yizhan.geo``, ``yizhan.settings``
and ``yizhan.errors``;
never a web framework (FastAPI lives in ``routes/`` and ``api.py``), ``web/``, ``maps/``
or ``cli/``.
"""

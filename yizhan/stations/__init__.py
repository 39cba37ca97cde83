"""The registry's truth: vocabulary, models and JSON Schema, validation, opening hours,
the in-memory registry and its search, cooling buses and their placements, heat alerts,
tokens, problem reports, proposed stations, editing with an audit log, and import
(``importing/``).

May import ``geo/``, ``settings`` and ``errors``; never ``query/`` or anything above it.
"""

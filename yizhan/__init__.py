"""Yizhan (驿站): a registry, nearest-station search, coverage analysis and maps for
service stations that give outdoor workers a place to rest, drink and cool down.

Packages, each importing only those below it (checked by the contracts in pyproject.toml)::

    cli/  →  api.py, routes/  →  web/  →  maps/  →  query/  →  stations/  →  geo/  →  settings, errors

``data/`` holds the bundled registry and districts, installed with the package.
"""

__version__ = "0.1.0"

"""Street networks for walking: OpenStreetMap in, a compact network file out.

Holds the I/O layer above :mod:`yizhan.geo.network` (which does the math):
:mod:`~yizhan.network.tags` (which OSM ways and nodes are walkable, versioned),
:mod:`~yizhan.network.osm` (reading ``.osm.pbf``, ``.osm`` and ``.osm.bz2`` with
pyosmium), :mod:`~yizhan.network.build` (the graph: lengths on the sphere, largest
connected component, spatial node order) and :mod:`~yizhan.network.store` (the on-disk
format, ``save_network``/``load_network``). May import :mod:`yizhan.geo` and
:mod:`yizhan.errors` only. The rules and the format are documented in ``docs/walking.md``.
"""

from yizhan.network.build import BuildReport, build_network
from yizhan.network.store import NetworkFile, NetworkFileError, load_network, save_network

__all__ = [
    "BuildReport",
    "NetworkFile",
    "NetworkFileError",
    "build_network",
    "load_network",
    "save_network",
]

"""Pure spatial math: coordinate systems (WGS-84, GCJ-02, BD-09), great-circle distance,
local projections, KD-tree nearest search, demand, hexagon grids, coverage, siting (MCLP)
and accessibility (2SFCA).

Functions take arrays (or shapely geometries) and return arrays; they never see a
Feature dict, a settings object or a file. May import numpy, scipy, shapely, pyproj,
pykdtree and ``yizhan.errors`` only (a station table is accepted through the
:class:`~yizhan.geo.coverage.StationTable` protocol, not by importing ``stations/``).
"""

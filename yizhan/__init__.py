"""Yizhan (驿站): a registry, nearest-station search, coverage analysis and maps for
service stations that give outdoor workers a place to rest, drink and cool down."""

__version__ = "0.1.0"

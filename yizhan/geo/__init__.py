"""Geodesy: coordinate systems, great-circle distance, nearest search, coverage and siting."""

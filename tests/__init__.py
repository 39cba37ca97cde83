"""Yizhan's test suite (a package, so `tests.*` never resolves to another distribution's `tests`)."""

"""Opening hours in OpenStreetMap ``opening_hours`` syntax, parsed with opening-hours-py.

This module validates expressions; evaluating them at a time (``open_now``) builds on it.
"""

from __future__ import annotations

from functools import lru_cache

import opening_hours


@lru_cache(maxsize=65536)
def hours_error(expression: str) -> str | None:
    """Why *expression* is not valid OSM opening_hours syntax, or ``None`` if it is.

    Parameters
    ----------
    expression : str
        An ``opening_hours`` value such as ``"Mo-Fr 09:00-17:00; PH off"``.

    Returns
    -------
    str or None
        The parser's message (first lines only), or ``None`` when the expression parses.
    """
    if not expression.strip():
        return "empty opening_hours; omit the property when hours are unknown"
    try:
        opening_hours.OpeningHours(expression)
    except Exception as exc:  # the parser raises ParserError and friends
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[-1].lstrip("= ").strip() if lines else type(exc).__name__
        return f"unparseable opening_hours {expression!r}: {detail}"
    return None

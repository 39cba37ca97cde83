"""The station score's rules and components: transparent, each a value from 0 to 1.

The weights and thresholds live in one TOML file, ``yizhan/data/score-weights.toml``
(``YIZHAN_SCORE_WEIGHTS`` names another); :func:`load_rules` reads and checks it. Each
component below is a plain function of arrays (one element per station), so that the
score of 100,000 stations is a few numpy operations, and a station's components can be
recomputed by hand from its data (``docs/evaluation.md``, ``tests/test_scoring.py``).
``NaN`` means "no data": the component is left out of that station's mean.

==============  ====================================================================
component       value
==============  ====================================================================
verification    1 if verified within ``fresh_days`` of the period's end, falling
                linearly to 0 at ``stale_days``; never verified: 0
photo           1 if the newest photo was taken within ``recent_days``; older: ``old_value``;
                none: 0
reports         1 − ``open_penalty`` × open problem reports (≥ 0), averaged with the
                speed of resolution (1 within ``fast_days``, 0 at ``slow_days``) when
                some were resolved; no problem report in the window: 1
hours           ``day_share`` × share of the outdoor working hours open + the rest ×
                share of the other hours open (24/7: 1); unknown hours: no data
hardships       (food, water, toilet, rest) answered / 4; a guessed amenity counts
                ``guessed_value``
accessibility   1 if ``wheelchair_accessible`` is listed, else 0
utilization     min(1, utilization / ``target``) with a capacity; else visits per open
                hour / the scope's ``relative_percentile``-th percentile; no visits data:
                no data
==============  ====================================================================
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from yizhan.errors import InvalidInputError
from yizhan.settings import BUNDLED_DATA
from yizhan.stations.vocab import CORE_HARDSHIPS, HARDSHIPS

#: The components, in the order they are shown.
COMPONENTS: tuple[str, ...] = (
    "verification",
    "photo",
    "reports",
    "hours",
    "hardships",
    "accessibility",
    "utilization",
)

F64 = NDArray[np.float64]
#: The bundled weights file.
DEFAULT_RULES = BUNDLED_DATA / "score-weights.toml"

#: Every rule of the file: section -> key -> (type, lowest, highest).
_RULES: dict[str, dict[str, tuple[type, float, float]]] = {
    "weights": dict.fromkeys(COMPONENTS, (float, 0.0, 1000.0)),
    "verification": {"fresh_days": (int, 0, 3650), "stale_days": (int, 1, 3650)},
    "photo": {"recent_days": (int, 1, 3650), "old_value": (float, 0.0, 1.0)},
    "reports": {
        "window_days": (int, 1, 3650),
        "open_penalty": (float, 0.0, 1.0),
        "fast_days": (float, 0.0, 365.0),
        "slow_days": (float, 0.01, 3650.0),
    },
    "hours": {"day_start": (str, 0, 0), "day_end": (str, 0, 0), "day_share": (float, 0.0, 1.0)},
    "hardships": {"guessed_value": (float, 0.0, 1.0)},
    "utilization": {"target": (float, 0.001, 100.0), "relative_percentile": (float, 1.0, 100.0)},
    "minimum": {"known_weight": (float, 0.0, 1.0), "usage_days": (int, 0, 3660)},
    "managers": {
        "stations_weight": (float, 0.0, 1000.0),
        "verification_weight": (float, 0.0, 1000.0),
        "verifications_per_station_month": (float, 0.01, 100.0),
        "resolution_weight": (float, 0.0, 1000.0),
        "min_ranked_stations": (int, 0, 100000),
    },
}


@dataclass(frozen=True)
class ScoreRules:
    """The contents of a score-weights file (see the module docstring)."""

    weights: dict[str, float]
    sections: dict[str, dict[str, Any]]
    source: str

    def rule(self, section: str, key: str) -> Any:
        return self.sections[section][key]

    @property
    def work_hours_s(self) -> tuple[int, int]:
        """Outdoor working hours as seconds after local midnight: ``(start, end)``."""
        return _clock_s(self.rule("hours", "day_start")), _clock_s(self.rule("hours", "day_end"))

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, **self.sections}


def _clock_s(text: str) -> int:
    h, _, m = text.partition(":")
    return int(h) * 3600 + int(m) * 60


def _check(section: str, key: str, value: Any, kind: type, lo: float, hi: float, where: str) -> Any:
    name = f"{section}.{key}"
    if kind is str:
        ok = isinstance(value, str) and len(value) == 5 and value[2] == ":"
        if ok:
            try:
                ok = 0 <= _clock_s(value) <= 24 * 3600 and int(value[3:]) < 60
            except ValueError:
                ok = False
        if not ok:
            raise InvalidInputError(where, f"{name}: Expected a time HH:MM, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(where, f"{name}: Expected a number, got {value!r}")
    if kind is int and not float(value).is_integer():
        raise InvalidInputError(where, f"{name}: Expected a whole number, got {value!r}")
    if not lo <= value <= hi or math.isnan(value):
        raise InvalidInputError(where, f"{name}: Expected {lo:g} to {hi:g}, got {value!r}")
    return kind(value)


def parse_rules(doc: dict[str, Any], source: str) -> ScoreRules:
    """Check a parsed weights file: every section and key present, values in range.

    Raises
    ------
    InvalidInputError
        Naming the file and the key.
    """
    sections: dict[str, dict[str, Any]] = {}
    for section, keys in _RULES.items():
        given = doc.get(section)
        if not isinstance(given, dict):
            raise InvalidInputError(source, f"Expected a [{section}] section")
        unknown = sorted(set(given) - set(keys))
        if unknown:
            raise InvalidInputError(
                source, f"{section}.{unknown[0]}: not a rule (expected {', '.join(keys)})"
            )
        sections[section] = {}
        for key, (kind, lo, hi) in keys.items():
            if key not in given:
                raise InvalidInputError(source, f"{section}.{key}: missing")
            sections[section][key] = _check(section, key, given[key], kind, lo, hi, source)
    weights = {c: float(sections["weights"][c]) for c in COMPONENTS}
    if sum(weights.values()) <= 0:
        raise InvalidInputError(source, "weights: Expected at least one weight above 0")
    start, end = (_clock_s(sections["hours"][k]) for k in ("day_start", "day_end"))
    if not start < end:
        raise InvalidInputError(source, "hours.day_end: Expected a time after hours.day_start")
    if sections["verification"]["fresh_days"] >= sections["verification"]["stale_days"]:
        raise InvalidInputError(
            source, "verification.stale_days: Expected more days than verification.fresh_days"
        )
    return ScoreRules(weights, sections, source)


def load_rules(path: Path | None = None) -> ScoreRules:
    """Read a weights file (default: the bundled one).

    Raises
    ------
    InvalidInputError
        The file is missing, not TOML, or breaks a rule.
    """
    where = path if path is not None else DEFAULT_RULES
    try:
        doc = tomllib.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(str(where), f"cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(str(where), f"not valid TOML: {exc}") from exc
    return parse_rules(doc, str(where))


# -- the components -----------------------------------------------------------------------------


def verification_value(
    verified_day: Sequence[int] | NDArray[np.int64], as_of_day: int, rules: ScoreRules
) -> F64:
    """Freshness of the last on-site check (``verified_day``: ``date.toordinal()``, -1: never)."""
    d = np.asarray(verified_day, dtype=np.float64)
    fresh, stale = (
        rules.rule("verification", "fresh_days"),
        rules.rule("verification", "stale_days"),
    )
    age = as_of_day - d
    v = np.clip((stale - age) / (stale - fresh), 0.0, 1.0)
    return np.where(d < 0, 0.0, v)


def photo_value(
    photo_day: Sequence[int] | NDArray[np.int64], as_of_day: int, rules: ScoreRules
) -> F64:
    """A recent photo (``photo_day``: day the newest was taken, -1: none)."""
    d = np.asarray(photo_day, dtype=np.float64)
    recent = as_of_day - d <= rules.rule("photo", "recent_days")
    out: F64 = np.where(d < 0, 0.0, np.where(recent, 1.0, rules.rule("photo", "old_value")))
    return out


def speed_value(days: Sequence[float] | F64, rules: ScoreRules) -> F64:
    """How fast reports were resolved: 1 within ``fast_days``, falling to 0 at ``slow_days``."""
    fast, slow = rules.rule("reports", "fast_days"), rules.rule("reports", "slow_days")
    d = np.asarray(days, dtype=np.float64)
    out: F64 = np.clip((slow - d) / max(slow - fast, 1e-9), 0.0, 1.0)
    return out


def reports_value(
    open_counts: Sequence[int], resolution_days: Sequence[Sequence[float]], rules: ScoreRules
) -> F64:
    """Open problem reports and how fast the resolved ones were resolved (per station: the
    number still open, and the days each resolved one took)."""
    penalty = rules.rule("reports", "open_penalty")
    out = np.empty(len(open_counts), dtype=np.float64)
    for i, (n_open, days) in enumerate(zip(open_counts, resolution_days, strict=True)):
        no_open = max(0.0, 1.0 - penalty * n_open)
        if len(days):
            out[i] = (no_open + float(np.mean(speed_value(days, rules)))) / 2
        else:
            out[i] = no_open
    return out


def hours_value(
    work_open_s: F64, work_total_s: F64, rest_open_s: F64, rest_total_s: F64, rules: ScoreRules
) -> F64:
    """Coverage of outdoor working hours (NaN in: unknown hours)."""
    share = rules.rule("hours", "day_share")
    with np.errstate(invalid="ignore", divide="ignore"):
        work = np.where(work_total_s > 0, work_open_s / work_total_s, 0.0)
        rest = np.where(rest_total_s > 0, rest_open_s / rest_total_s, 0.0)
    out: F64 = share * work + (1.0 - share) * rest
    return out


def hardships_value(amenities: Iterable[Any], guessed: Iterable[Any], rules: ScoreRules) -> F64:
    """How many of the four hardships (eat, drink, toilet, rest) a station answers, / 4."""
    half = rules.rule("hardships", "guessed_value")
    out = []
    for amen, guess in zip(amenities, guessed, strict=True):
        have = set(amen or ())
        amenities_guessed = "amenities" in set(guess or ())
        got = sum(1.0 for h in CORE_HARDSHIPS if have & set(HARDSHIPS[h]))
        out.append(got * (half if amenities_guessed else 1.0) / len(CORE_HARDSHIPS))
    return np.asarray(out, dtype=np.float64)


def accessibility_value(amenities: Iterable[Any]) -> F64:
    """1 for a wheelchair-accessible station, else 0."""
    return np.asarray(
        [1.0 if "wheelchair_accessible" in (a or ()) else 0.0 for a in amenities], dtype=np.float64
    )


def utilization_value(
    utilization: F64, per_open_hour: F64, reference_per_hour: float, rules: ScoreRules
) -> F64:
    """Use of the station: by capacity where known, else relative to *reference_per_hour*
    (the scope's percentile of visits per open hour); NaN: no visits data."""
    target = rules.rule("utilization", "target")
    by_capacity = np.minimum(1.0, utilization / target)
    rel = (
        np.minimum(1.0, per_open_hour / reference_per_hour)
        if reference_per_hour > 0
        else np.where(np.isnan(per_open_hour), np.nan, 0.0)
    )
    return np.where(np.isnan(utilization), rel, by_capacity)


def combine(values: F64, rules: ScoreRules) -> tuple[F64, F64]:
    """Scores 0–100 (weighted mean of the known components) and the share of the weights
    that is known, from an ``(n, len(COMPONENTS))`` array of values (NaN: unknown)."""
    w = np.asarray([rules.weights[c] for c in COMPONENTS], dtype=np.float64)
    known = ~np.isnan(values)
    wk = np.where(known, w, 0.0)
    total = wk.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = 100.0 * np.where(known, values, 0.0) @ w / total
    return np.where(total > 0, score, np.nan), total / w.sum()


__all__ = [
    "COMPONENTS",
    "ScoreRules",
    "accessibility_value",
    "combine",
    "hardships_value",
    "hours_value",
    "load_rules",
    "parse_rules",
    "photo_value",
    "reports_value",
    "speed_value",
    "utilization_value",
    "verification_value",
]

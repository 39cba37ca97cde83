"""Station scores, and rankings of stations and of their managers (``yizhan awards``,
``GET /analysis/ranking``, ``GET /stations/{id}/score``).

A station's score (0–100) is the weighted mean of the components of
:mod:`yizhan.stations.scoring` whose data is known, computed over a period (a month, or a
year) from the registry, the photos, the problem reports, the registry's audit log (who
verified when) and the visits. Scores do not depend on the view: the "relative" use of
stations without a capacity is measured against the whole network's percentile.

**Rules of the ranking** (``docs/evaluation.md``):

* only operational stations (not buses) are ranked;
* a station is ranked only with enough data: the known components weigh at least
  ``minimum.known_weight`` of all weights, and it has visit data on ``minimum.usage_days``
  days of the period; otherwise it is listed as *not ranked*, with the reasons;
* scores are compared rounded to 0.1; equal scores share a rank and the next rank is
  skipped ("1, 2, 2, 4"); within a tie, stations are listed by id;
* a manager (a ``manager`` token) is scored on the mean score of its ranked stations, its
  on-site verifications of them and the problem reports at them that its verifications
  resolved (and how fast), weighted by the ``[managers]`` rules; ranked with at least
  ``min_ranked_stations`` ranked stations; ties as for stations, by token id.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol, overload
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from yizhan.errors import InvalidInputError, NotFoundError
from yizhan.query.usage_service import UsageStores, network_usage
from yizhan.stations.audit import HistoryPage
from yizhan.stations.registry import STATUSES
from yizhan.stations.reports import ReportStore
from yizhan.stations.scoring import (
    COMPONENTS,
    ScoreRules,
    accessibility_value,
    combine,
    hardships_value,
    hours_value,
    photo_value,
    reports_value,
    speed_value,
    utilization_value,
    verification_value,
)
from yizhan.stations.search import StationSearch
from yizhan.stations.staleness import verified_at
from yizhan.stations.tokens import TokenRecord
from yizhan.stations.vocab import CORE_HARDSHIPS, HARDSHIPS

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Period:
    """What an award covers: ``2026-07`` (a month) or ``2026`` (a year)."""

    label: str
    first: date
    last: date

    @property
    def months(self) -> float:
        return ((self.last - self.first).days + 1) / 30.44


def parse_award_period(text: str | None, today: date) -> Period:
    """``YYYY-MM`` or ``YYYY`` (default: the current month).

    Raises
    ------
    InvalidInputError
        Naming ``period``.
    """
    value = (text or f"{today:%Y-%m}").strip()
    try:
        if len(value) == 7 and value[4] == "-":
            y, m = int(value[:4]), int(value[5:])
            first = date(y, m, 1)
            last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        elif len(value) == 4:
            first, last = date(int(value), 1, 1), date(int(value), 12, 31)
        else:
            raise ValueError(value)
    except ValueError:
        raise InvalidInputError(
            "period", f"Expected a month YYYY-MM or a year YYYY, got {text!r}"
        ) from None
    if first > today:
        raise InvalidInputError("period", f"Expected a period that has begun, got {value}")
    return Period(value, first, last)


# -- history from the audit log --------------------------------------------------------------------


class AuditEntries(Protocol):
    """The audit entries of one station, oldest first (an ``AuditLog`` has them)."""

    def entries(self, feature_id: str | None = None) -> list[dict[str, Any]]: ...


class Historied(Protocol):
    """A storage backend's stations (files or PostgreSQL), which page their history."""

    def history(
        self,
        feature_id: str,
        limit: int | None = None,
        cursor: int = 0,
        newest_first: bool = False,
    ) -> HistoryPage: ...


@dataclass(frozen=True)
class StoreHistory:
    """:class:`AuditEntries` read through a storage backend's station history, so scores
    and awards work on either backend."""

    store: Historied

    def entries(self, feature_id: str | None = None) -> list[dict[str, Any]]:
        if feature_id is None:
            raise InvalidInputError("station_id", "Expected a station id, got none")
        return self.store.history(feature_id).entries


def verifications(
    audit: AuditEntries | None, station_id: str
) -> list[tuple[datetime, dict[str, Any]]]:
    """Every on-site verification of a station in the audit log: ``(when, actor)``, oldest first."""
    if audit is None:
        return []
    out = []
    for row in audit.entries(station_id):
        if row.get("action") == "verify":
            try:
                when = datetime.fromisoformat(str(row["at"]))
            except (KeyError, ValueError):
                continue
            out.append((when.astimezone(UTC), row.get("actor") or {}))
    return out


def _resolutions(
    reports: ReportStore | None,
    audit: AuditEntries | None,
    station_id: str,
    feature: dict[str, Any],
    since: datetime,
    end: datetime,
) -> list[tuple[datetime, datetime | None, dict[str, Any] | None]]:
    """Problem reports of a station made in ``[since, end)``: ``(made, resolved, by)`` with
    the first verification after each (before *end*), or ``None`` while still open."""
    if reports is None:
        return []
    made = [r.created_at for r in reports.for_station(station_id) if r.problem]
    made = sorted(t for t in made if since <= t < end)
    if not made:
        return []
    checks = verifications(audit, station_id)
    last = verified_at(feature)
    if last is not None and all(abs((t - last).total_seconds()) > 1 for t, _ in checks):
        checks.append((last.astimezone(UTC), {"role": None, "name": None, "token_id": None}))
    checks.sort(key=lambda c: c[0])
    out: list[tuple[datetime, datetime | None, dict[str, Any] | None]] = []
    for t in made:
        hit = next(((w, a) for w, a in checks if t < w < end), None)
        out.append((t, hit[0], hit[1]) if hit else (t, None, None))
    return out


# -- station scores --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ScoreTable:
    """Every operational station's components, score and whether it is ranked.

    ``values`` is ``(stations, components)`` (NaN: no data); ``inputs`` holds, per
    component, what its value was computed from (columns, one element per station), from
    which :meth:`row` writes each component's ``detail``.
    """

    period: Period
    rules: ScoreRules
    timezone: str
    ids: list[str]
    names: list[str]
    districts: list[str]
    values: F64
    score: F64
    known_share: F64
    ranked: NDArray[np.bool_]
    reasons: list[list[str]]
    visits: F64
    days_with_data: NDArray[np.int64]
    inputs: dict[str, Any]
    _rows: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)
    _cols: dict[str, Any] = field(default_factory=dict, repr=False)

    def row(self, i: int) -> dict[str, Any]:
        """One station's score with each component: value, weight, points (built once)."""
        found = self._rows.get(i)
        if found is None:
            found = self._rows[i] = self._row(i)
        return found

    def _columns(self) -> dict[str, Any]:
        """Values, points and details as plain Python lists, converted once for all rows."""
        if "values" not in self._cols:
            w = np.asarray([self.rules.weights[c] for c in COMPONENTS])
            known = ~np.isnan(self.values)
            known_w = np.where(known, w, 0.0).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                points = 100.0 * self.values * w / known_w[:, None]
            self._cols["values"] = np.round(self.values, 4).tolist()
            self._cols["points"] = np.round(points, 2).tolist()
            self._cols["weights"] = w.tolist()
            self._cols["score"] = np.round(self.score, 1).tolist()
            self._cols["known"] = np.round(self.known_share, 3).tolist()
            self._cols["visits"] = self.visits.astype(np.int64).tolist()
            self._cols["days"] = self.days_with_data.tolist()
        return self._cols

    def _row(self, i: int) -> dict[str, Any]:
        c = self._columns()
        vals, pts, w = c["values"][i], c["points"][i], c["weights"]
        details = _details(self.inputs, i)
        comps = [
            {
                "component": name,
                "value": None if vals[k] != vals[k] else vals[k],
                "weight": w[k],
                "points": None if pts[k] != pts[k] else pts[k],
                "detail": details[name],
            }
            for k, name in enumerate(COMPONENTS)
        ]
        score = c["score"][i]
        return {
            "id": self.ids[i],
            "name": self.names[i],
            "district": self.districts[i] or None,
            "score": None if score != score else score,
            "ranked": bool(self.ranked[i]),
            "not_ranked_because": self.reasons[i],
            "known_weight_share": c["known"][i],
            "visits": c["visits"][i],
            "days_with_data": c["days"][i],
            "components": comps,
        }

    def in_district(self, district: str | None) -> list[int]:
        """Positions of the stations of a district (all for ``None``)."""
        if district is None:
            return list(range(len(self.ids)))
        if "by_district" not in self._cols:
            by: dict[str, list[int]] = {}
            for j, d in enumerate(self.districts):
                by.setdefault(d, []).append(j)
            self._cols["by_district"] = by
        by_district: dict[str, list[int]] = self._cols["by_district"]
        return by_district.get(district, [])


def _num(x: float, digits: int) -> float | None:
    return None if x != x else round(float(x), digits)


def _details(inputs: dict[str, Any], i: int) -> dict[str, Any]:
    """What each component of station *i* was computed from."""
    vday, pday = int(inputs["verified_day"][i]), int(inputs["photo_day"][i])
    have = set(inputs["amenities"][i])
    work, rest = float(inputs["work_share"][i]), float(inputs["rest_share"][i])
    util, vpoh = float(inputs["utilization"][i]), float(inputs["per_open_hour"][i])
    return {
        "verification": {"verified_on": date.fromordinal(vday).isoformat() if vday > 0 else None},
        "photo": {"taken_on": date.fromordinal(pday).isoformat() if pday > 0 else None},
        "reports": inputs["reports"].get(i)
        or {"problem_reports": 0, "open": 0, "resolution_days": []},
        "hours": {
            "opening_hours": inputs["opening_hours"][i],
            "work_hours_open_share": _num(work, 4),
            "other_hours_open_share": _num(rest, 4),
        },
        "hardships": {
            "answered": [h for h in CORE_HARDSHIPS if have & set(HARDSHIPS[h])],
            "amenities_guessed": "amenities" in (inputs["guessed"][i] or ()),
        },
        "accessibility": {"wheelchair_accessible": "wheelchair_accessible" in have},
        "utilization": {
            "visits": int(inputs["visits"][i]),
            "utilization": _num(util, 4),
            "visits_per_open_hour": _num(vpoh, 3),
            "reference_visits_per_open_hour": round(inputs["reference"], 3)
            if util != util and inputs["days_with_data"][i] > 0
            else None,
        },
    }


def score_stations(
    search: StationSearch,
    stores: UsageStores,
    reports: ReportStore | None,
    audit: AuditEntries | None,
    period: Period,
) -> ScoreTable:
    """Score every operational station of the registry over *period*."""
    rules = stores.rules
    reg = search.registry
    tz = ZoneInfo(stores.timezone)
    end_day = period.last
    end = datetime.combine(end_day + timedelta(days=1), time(), tz).astimezone(UTC)
    sel = np.flatnonzero(reg.status == STATUSES.index("operational"))
    feats = [reg.features[i] for i in sel.tolist()]
    n = len(feats)
    ids = [reg.ids[i] for i in sel.tolist()]
    values = np.full((n, len(COMPONENTS)), np.nan)
    col = {c: k for k, c in enumerate(COMPONENTS)}
    props = [f["properties"] for f in feats]

    # verification: the last one on or before the period's end
    vday = reg.verified_day[sel].copy()
    for j in np.flatnonzero(vday > end_day.toordinal()).tolist():
        before = [w for w, _ in verifications(audit, ids[j]) if w < end]
        vday[j] = before[-1].astimezone(tz).date().toordinal() if before else -1
    values[:, col["verification"]] = verification_value(vday, end_day.toordinal(), rules)

    # photo: the newest taken on or before the period's end
    newest: dict[str, date] = {}
    for sid in set(ids) & set(stores.photos.latest_by_station()):
        days = [p.taken_on for p in stores.photos.for_station(sid) if p.taken_on <= end_day]
        if days:
            newest[sid] = max(days)
    pday = np.asarray([newest[s].toordinal() if s in newest else -1 for s in ids], np.int64)
    values[:, col["photo"]] = photo_value(pday, end_day.toordinal(), rules)

    # reports: made within the window before the period's end
    window = timedelta(days=rules.rule("reports", "window_days"))
    with_reports = set(reports.station_ids()) if reports is not None else set()
    open_counts: list[int] = [0] * n
    res_days: list[list[float]] = [[] for _ in range(n)]
    report_details: dict[int, dict[str, Any]] = {}
    for j, sid in enumerate(ids):
        if sid not in with_reports:
            continue
        res = _resolutions(reports, audit, sid, feats[j], end - window, end)
        open_counts[j] = sum(1 for _, r, _ in res if r is None)
        res_days[j] = [round((r - t).total_seconds() / 86400, 2) for t, r, _ in res if r]
        report_details[j] = {
            "problem_reports": len(res),
            "open": open_counts[j],
            "resolution_days": res_days[j],
        }
    values[:, col["reports"]] = reports_value(open_counts, res_days, rules)

    # hours, and usage, over the period
    usage = network_usage(search, stores, period.first, period.last)
    units = usage.units
    uidx = sel  # the units start with the registry's stations, in its order
    assert units.keys[: len(reg)] == reg.ids
    opened = stores.open_time(units, period.first, period.last)
    kid = units.kid[uidx]
    has = kid >= 0
    k = np.maximum(kid, 0)
    work_open = opened.work.sum(axis=1)[k]
    total_open = opened.total.sum(axis=1)[k]
    work_len = float(opened.work_len.sum())
    rest_len = float(opened.day_len.sum()) - work_len
    hv = hours_value(
        work_open, np.full(n, work_len), total_open - work_open, np.full(n, rest_len), rules
    )
    values[:, col["hours"]] = np.where(has, hv, np.nan)

    amen = [p.get("amenities") or [] for p in props]
    guessed = [p.get("guessed") or [] for p in props]
    values[:, col["hardships"]] = hardships_value(amen, guessed, rules)
    values[:, col["accessibility"]] = accessibility_value(amen)

    visits = usage.visits[uidx]
    dwd = usage.days_with_data[uidx]
    util = usage.utilization[uidx]
    vpoh = usage.per_open_hour[uidx]
    data = dwd > 0
    ref_pool = vpoh[data & ~np.isnan(vpoh)]
    pct = rules.rule("utilization", "relative_percentile")
    reference = float(np.percentile(ref_pool, pct)) if ref_pool.size else 0.0
    uv = utilization_value(util, vpoh, reference, rules)
    values[:, col["utilization"]] = np.where(data, uv, np.nan)

    score, known = combine(values, rules)
    need_w = rules.rule("minimum", "known_weight")
    need_days = rules.rule("minimum", "usage_days")
    short_w = known + 1e-9 < need_w
    short_d = dwd < need_days
    reasons: list[list[str]] = []
    for j in range(n):
        why = []
        if short_w[j]:
            missing = [c for c in COMPONENTS if math.isnan(values[j, col[c]])]
            why.append(
                f"known components weigh {100 * known[j]:.0f}% of the weights, "
                f"{100 * need_w:.0f}% needed (no data: {', '.join(missing)})"
            )
        if short_d[j]:
            why.append(f"visit data on {int(dwd[j])} days of the period, {need_days} needed")
        reasons.append(why)
    with np.errstate(invalid="ignore", divide="ignore"):
        work_share = np.where(has & (work_len > 0), work_open / max(work_len, 1e-9), np.nan)
        rest_share = np.where(
            has & (rest_len > 0), (total_open - work_open) / max(rest_len, 1e-9), np.nan
        )
    return ScoreTable(
        period=period,
        rules=rules,
        timezone=stores.timezone,
        ids=ids,
        names=[str(p.get("name", "")) for p in props],
        districts=[str(p.get("district") or "") for p in props],
        values=values,
        score=score,
        known_share=known,
        ranked=~(short_w | short_d),
        reasons=reasons,
        visits=visits,
        days_with_data=dwd,
        inputs={
            "verified_day": vday,
            "photo_day": pday,
            "reports": report_details,
            "opening_hours": [p.get("opening_hours") for p in props],
            "work_share": work_share,
            "rest_share": rest_share,
            "amenities": amen,
            "guessed": guessed,
            "visits": visits,
            "utilization": util,
            "per_open_hour": vpoh,
            "reference": reference,
            "days_with_data": dwd,
        },
    )


def competition_ranks(scores: Sequence[float]) -> list[int]:
    """Ranks of scores sorted high to low, compared at 0.1: ties share, the next is skipped."""
    out: list[int] = []
    prev: float | None = None
    for pos, s in enumerate(scores, 1):
        key = round(s, 1)
        out.append(out[-1] if prev is not None and key == prev else pos)
        prev = key
    return out


class RankedRows(Sequence[dict[str, Any]]):
    """The rows of a ranking, best first: each built (with its components) when read.

    Building 100,000 rows of nested dictionaries costs seconds; a report reads a few of
    them (the winners, a page), and the CSV its numbers (:meth:`entries`).
    """

    def __init__(self, table: ScoreTable, entries: list[tuple[int, int | None]]) -> None:
        self.table = table
        self.entries = entries
        self.ranked_count = sum(1 for _, r in entries if r is not None)

    def __len__(self) -> int:
        return len(self.entries)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        j, rank = self.entries[i]
        return {**self.table.row(j), "rank": rank}


def rank_stations(table: ScoreTable, district: str | None = None) -> RankedRows:
    """Ranked stations of a district (or the network, ``None``) best first, then the
    stations not ranked (by id), each with its rank (``None`` for those)."""
    sel = table.in_district(district)
    rounded = np.round(table.score, 1)
    ranked = sorted((j for j in sel if table.ranked[j]), key=lambda j: (-rounded[j], table.ids[j]))
    ranks = competition_ranks([float(rounded[j]) for j in ranked])
    entries: list[tuple[int, int | None]] = list(zip(ranked, ranks, strict=True))
    entries += [
        (j, None)
        for j in sorted((j for j in sel if not table.ranked[j]), key=lambda j: table.ids[j])
    ]
    return RankedRows(table, entries)


# -- managers ------------------------------------------------------------------------------------


def rank_managers(
    table: ScoreTable,
    tokens: Sequence[TokenRecord],
    audit: AuditEntries | None,
    reports: ReportStore | None,
    search: StationSearch,
    district: str | None = None,
) -> list[dict[str, Any]]:
    """Managers (``manager`` tokens valid during the period) scored and ranked."""
    rules = table.rules
    m = rules.sections["managers"]
    tz = ZoneInfo(table.timezone)
    start = datetime.combine(table.period.first, time(), tz)
    end = datetime.combine(table.period.last + timedelta(days=1), time(), tz)
    pos = {sid: j for j, sid in enumerate(table.ids)}
    reg = search.registry
    rows = []
    for rec in tokens:
        if rec.role != "manager" or (rec.revoked_at is not None and rec.revoked_at < start):
            continue
        mine = [s for s in rec.stations if s in pos]
        if district is not None and not any(table.districts[pos[s]] == district for s in mine):
            continue
        ranked = [pos[s] for s in mine if table.ranked[pos[s]]]
        mean_score = float(np.mean(table.score[ranked])) if ranked else math.nan
        n_verify = 0
        speeds: list[float] = []
        for sid in rec.stations:
            for when, actor in verifications(audit, sid):
                if start <= when < end and actor.get("token_id") == rec.token_id:
                    n_verify += 1
            i = reg.index_of.get(sid)
            if i is None:
                continue
            for made, resolved, by in _resolutions(
                reports, audit, sid, reg.features[i], start, end
            ):
                if resolved is None:
                    speeds.append(0.0)  # still open at the period's end
                elif by is not None and by.get("token_id") == rec.token_id:
                    days = (resolved - made).total_seconds() / 86400
                    speeds.append(float(speed_value([days], rules)[0]))
                # resolved by someone else: not this manager's work, nor its failure
        expected = (
            max(len(rec.stations), 1) * table.period.months * m["verifications_per_station_month"]
        )
        verify_v = min(1.0, n_verify / expected)
        resolve_v = float(np.mean(speeds)) if speeds else math.nan
        parts = [
            ("stations", mean_score / 100 if ranked else math.nan, m["stations_weight"]),
            ("verification", verify_v, m["verification_weight"]),
            ("resolution", resolve_v, m["resolution_weight"]),
        ]
        known_w = sum(w for _, v, w in parts if not math.isnan(v))
        score = (
            100.0 * sum(v * w for _, v, w in parts if not math.isnan(v)) / known_w
            if known_w
            else math.nan
        )
        ok = len(ranked) >= m["min_ranked_stations"] and not math.isnan(score)
        rows.append(
            {
                "token_id": rec.token_id,
                "name": rec.name,
                "stations": list(rec.stations),
                "ranked_stations": len(ranked),
                "mean_station_score": round(mean_score, 1) if ranked else None,
                "verifications": n_verify,
                "verifications_expected": round(expected, 1),
                "problem_reports": len(speeds),
                "score": round(score, 1) if not math.isnan(score) else None,
                "components": [
                    {
                        "component": name,
                        "value": None if math.isnan(v) else round(v, 4),
                        "weight": w,
                    }
                    for name, v, w in parts
                ],
                "ranked": ok,
                "not_ranked_because": []
                if ok
                else [f"{len(ranked)} ranked stations, {m['min_ranked_stations']} needed"],
            }
        )
    good = sorted((r for r in rows if r["ranked"]), key=lambda r: (-r["score"], r["token_id"]))
    for r, rank in zip(good, competition_ranks([r["score"] for r in good]), strict=True):
        r["rank"] = rank
    rest = sorted((r for r in rows if not r["ranked"]), key=lambda r: r["token_id"])
    for r in rest:
        r["rank"] = None
    return good + rest


def find_station(table: ScoreTable, station_id: str) -> int:
    """Position of a station in a score table.

    Raises
    ------
    NotFoundError
        Not an operational station.
    """
    try:
        return table.ids.index(station_id)
    except ValueError:
        raise NotFoundError(f"no operational station with id {station_id!r} to score") from None


__all__ = [
    "Period",
    "RankedRows",
    "ScoreTable",
    "competition_ranks",
    "find_station",
    "parse_award_period",
    "rank_managers",
    "rank_stations",
    "score_stations",
    "verifications",
]

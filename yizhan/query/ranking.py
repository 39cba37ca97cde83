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
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from yizhan.errors import InvalidInputError, NotFoundError
from yizhan.query.usage_service import UsageStores, network_usage
from yizhan.stations.audit import AuditLog
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


def verifications(audit: AuditLog | None, station_id: str) -> list[tuple[datetime, dict[str, Any]]]:
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
    audit: AuditLog | None,
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
    """Every operational station's components, score and whether it is ranked."""

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
    details: list[dict[str, Any]]

    def row(self, i: int) -> dict[str, Any]:
        """One station's score with each component: value, weight, points."""
        w = self.rules.weights
        known_w = sum(w[c] for k, c in enumerate(COMPONENTS) if not math.isnan(self.values[i, k]))
        comps = []
        for k, c in enumerate(COMPONENTS):
            v = self.values[i, k]
            known = not math.isnan(v)
            comps.append(
                {
                    "component": c,
                    "value": round(float(v), 4) if known else None,
                    "weight": w[c],
                    "points": round(100.0 * float(v) * w[c] / known_w, 2)
                    if known and known_w
                    else None,
                    "detail": self.details[i].get(c),
                }
            )
        s = self.score[i]
        return {
            "id": self.ids[i],
            "name": self.names[i],
            "district": self.districts[i] or None,
            "score": round(float(s), 1) if not math.isnan(s) else None,
            "ranked": bool(self.ranked[i]),
            "not_ranked_because": self.reasons[i],
            "known_weight_share": round(float(self.known_share[i]), 3),
            "visits": int(self.visits[i]),
            "days_with_data": int(self.days_with_data[i]),
            "components": comps,
        }


def score_stations(
    search: StationSearch,
    stores: UsageStores,
    reports: ReportStore | None,
    audit: AuditLog | None,
    period: Period,
) -> ScoreTable:
    """Score every operational station of the registry over *period*."""
    rules = stores.rules
    reg = search.registry
    tz = ZoneInfo(stores.timezone)
    end_day = period.last
    end = datetime.combine(end_day + timedelta(days=1), time(), tz).astimezone(UTC)
    sel = [
        i
        for i, f in enumerate(reg.features)
        if (f["properties"].get("status") or "operational") == "operational"
    ]
    feats = [reg.features[i] for i in sel]
    n = len(sel)
    ids = [reg.ids[i] for i in sel]
    details: list[dict[str, Any]] = [{} for _ in range(n)]
    values = np.full((n, len(COMPONENTS)), np.nan)
    col = {c: k for k, c in enumerate(COMPONENTS)}

    # verification: the last one on or before the period's end
    vday = reg.verified_day[sel].copy()
    for j in np.flatnonzero(vday > end_day.toordinal()).tolist():
        before = [w for w, _ in verifications(audit, ids[j]) if w < end]
        vday[j] = before[-1].astimezone(tz).date().toordinal() if before else -1
    values[:, col["verification"]] = verification_value(vday, end_day.toordinal(), rules)
    for j in range(n):
        details[j]["verification"] = {
            "verified_on": date.fromordinal(int(vday[j])).isoformat() if vday[j] > 0 else None
        }

    # photo: the newest taken on or before the period's end
    newest: dict[str, date] = {}
    for sid in set(ids) & set(stores.photos.latest_by_station()):
        days = [p.taken_on for p in stores.photos.for_station(sid) if p.taken_on <= end_day]
        if days:
            newest[sid] = max(days)
    pday = np.asarray([newest[s].toordinal() if s in newest else -1 for s in ids], np.int64)
    values[:, col["photo"]] = photo_value(pday, end_day.toordinal(), rules)
    for j, s in enumerate(ids):
        details[j]["photo"] = {"taken_on": newest[s].isoformat() if s in newest else None}

    # reports: made within the window before the period's end
    window = timedelta(days=rules.rule("reports", "window_days"))
    with_reports = set(reports.station_ids()) if reports is not None else set()
    open_counts: list[int] = [0] * n
    res_days: list[list[float]] = [[] for _ in range(n)]
    for j, sid in enumerate(ids):
        if sid not in with_reports:
            details[j]["reports"] = {"problem_reports": 0, "open": 0, "resolution_days": []}
            continue
        res = _resolutions(reports, audit, sid, feats[j], end - window, end)
        open_counts[j] = sum(1 for _, r, _ in res if r is None)
        res_days[j] = [round((r - t).total_seconds() / 86400, 2) for t, r, _ in res if r]
        details[j]["reports"] = {
            "problem_reports": len(res),
            "open": open_counts[j],
            "resolution_days": res_days[j],
        }
    values[:, col["reports"]] = reports_value(open_counts, res_days, rules)

    # hours, and usage, over the period
    usage = network_usage(search, stores, period.first, period.last)
    units = usage.units
    index = units.index
    uidx = np.asarray([index[s] for s in ids], dtype=np.int64)
    opened = stores.open_time(units, period.first, period.last)
    kid = units.kid[uidx]
    has = kid >= 0
    k = np.maximum(kid, 0)
    work_open = opened.work[k].sum(axis=1)
    total_open = opened.total[k].sum(axis=1)
    work_len = float(opened.work_len.sum())
    rest_len = float(opened.day_len.sum()) - work_len
    hv = hours_value(
        work_open, np.full(n, work_len), total_open - work_open, np.full(n, rest_len), rules
    )
    values[:, col["hours"]] = np.where(has, hv, np.nan)
    for j in range(n):
        details[j]["hours"] = {
            "opening_hours": feats[j]["properties"].get("opening_hours"),
            "work_hours_open_share": round(float(work_open[j] / work_len), 4)
            if has[j] and work_len
            else None,
            "other_hours_open_share": round(float((total_open[j] - work_open[j]) / rest_len), 4)
            if has[j] and rest_len
            else None,
        }

    amen = [f["properties"].get("amenities") or [] for f in feats]
    guessed = [f["properties"].get("guessed") or [] for f in feats]
    values[:, col["hardships"]] = hardships_value(amen, guessed, rules)
    values[:, col["accessibility"]] = accessibility_value(amen)
    for j in range(n):
        have = set(amen[j])
        details[j]["hardships"] = {
            "answered": [h for h in CORE_HARDSHIPS if have & set(HARDSHIPS[h])],
            "amenities_guessed": "amenities" in guessed[j],
        }
        details[j]["accessibility"] = {"wheelchair_accessible": "wheelchair_accessible" in have}

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
    for j in range(n):
        details[j]["utilization"] = {
            "visits": int(visits[j]),
            "utilization": None if math.isnan(util[j]) else round(float(util[j]), 4),
            "visits_per_open_hour": None if math.isnan(vpoh[j]) else round(float(vpoh[j]), 3),
            "reference_visits_per_open_hour": round(reference, 3)
            if math.isnan(util[j]) and data[j]
            else None,
        }

    score, known = combine(values, rules)
    need_w = rules.rule("minimum", "known_weight")
    need_days = rules.rule("minimum", "usage_days")
    reasons: list[list[str]] = []
    for j in range(n):
        why = []
        if known[j] + 1e-9 < need_w:
            missing = [c for c in COMPONENTS if math.isnan(values[j, col[c]])]
            why.append(
                f"known components weigh {100 * known[j]:.0f}% of the weights, "
                f"{100 * need_w:.0f}% needed (no data: {', '.join(missing)})"
            )
        if dwd[j] < need_days:
            why.append(f"visit data on {int(dwd[j])} days of the period, {need_days} needed")
        reasons.append(why)
    return ScoreTable(
        period=period,
        rules=rules,
        timezone=stores.timezone,
        ids=ids,
        names=[str(f["properties"].get("name", "")) for f in feats],
        districts=[str(f["properties"].get("district") or "") for f in feats],
        values=values,
        score=score,
        known_share=known,
        ranked=np.asarray([not r for r in reasons], dtype=bool),
        reasons=reasons,
        visits=visits,
        days_with_data=dwd,
        details=details,
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


def rank_stations(table: ScoreTable, district: str | None = None) -> list[dict[str, Any]]:
    """Ranked stations of a district (or the network, ``None``) best first, then the
    stations not ranked (by id), each with its rank (``None`` for those)."""
    sel = [j for j in range(len(table.ids)) if district is None or table.districts[j] == district]
    ranked = sorted(
        (j for j in sel if table.ranked[j]),
        key=lambda j: (-round(float(table.score[j]), 1), table.ids[j]),
    )
    ranks = competition_ranks([float(table.score[j]) for j in ranked])
    rows = [{**table.row(j), "rank": r} for j, r in zip(ranked, ranks, strict=True)]
    rows += [
        {**table.row(j), "rank": None}
        for j in sorted((j for j in sel if not table.ranked[j]), key=lambda j: table.ids[j])
    ]
    return rows


# -- managers ------------------------------------------------------------------------------------


def rank_managers(
    table: ScoreTable,
    tokens: Sequence[TokenRecord],
    audit: AuditLog | None,
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
    "ScoreTable",
    "competition_ranks",
    "find_station",
    "parse_award_period",
    "rank_managers",
    "rank_stations",
    "score_stations",
    "verifications",
]

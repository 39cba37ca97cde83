"""Awards: "best station" per district and "star station manager", as CSV, XLSX and a
printable HTML report (``yizhan awards``, ``GET /analysis/ranking?format=…``).

The HTML report is one self-contained file: inline CSS, per-district bar charts as inline
SVG, no script and nothing fetched, A4 page breaks. Every text from the registry is escaped.
The rules of the ranking (:mod:`yizhan.query.ranking`) and the weights are printed with it.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from yizhan.errors import InvalidInputError
from yizhan.query.ranking import (
    AuditEntries,
    Period,
    RankedRows,
    ScoreTable,
    rank_managers,
    rank_stations,
    score_stations,
)
from yizhan.query.usage_service import UsageStores
from yizhan.stations.reports import ReportStore
from yizhan.stations.scoring import COMPONENTS
from yizhan.stations.search import StationSearch
from yizhan.stations.tokens import TokenRecord
from yizhan.stations.usage_files import SOURCE_SYNTHETIC

#: Bars drawn per district chart (the best ones).
CHART_BARS = 15

RULES_TEXT = (
    "Scores are 0–100: the weighted mean of the components whose data is known. A station is "
    "ranked only when its known components weigh at least {known:.0%} of the weights and it "
    "has visit data on at least {days} days of the period; others are listed as not ranked, "
    "with the reason. Scores are compared rounded to 0.1: equal scores share a rank and the "
    "next rank is skipped (1, 2, 2, 4); within a tie stations are listed by id. Managers are "
    "ranked on the mean score of their ranked stations, their on-site verifications and the "
    "problem reports their verifications resolved; at least {min_st} ranked station(s)."
)


@dataclass(frozen=True, eq=False)
class Awards:
    """The ranking of one period (and district)."""

    period: Period
    district: str | None
    table: ScoreTable
    stations: RankedRows
    districts: dict[str, RankedRows]
    managers: list[dict[str, Any]]
    synthetic_share: float

    def rules_text(self) -> str:
        r = self.table.rules
        return RULES_TEXT.format(
            known=r.rule("minimum", "known_weight"),
            days=r.rule("minimum", "usage_days"),
            min_st=r.rule("managers", "min_ranked_stations"),
        )

    def as_dict(self, limit: int | None = None) -> dict[str, Any]:
        """``GET /analysis/ranking`` (JSON)."""
        rows = self.stations[: len(self.stations) if limit is None else limit]
        return {
            "period": self.period.label,
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "scope": self.district or "network",
            "synthetic_share": round(self.synthetic_share, 3),
            "rules": self.rules_text(),
            "weights": self.table.rules.weights,
            "weights_file": self.table.rules.source,
            "stations_ranked": self.stations.ranked_count,
            "stations_not_ranked": len(self.stations) - self.stations.ranked_count,
            "stations": rows,
            "winners": {d: r[0] for d, r in self.districts.items() if r.ranked_count},
            "managers": self.managers,
        }


def build_awards(
    search: StationSearch,
    stores: UsageStores,
    reports: ReportStore | None,
    audit: AuditEntries | None,
    tokens: list[TokenRecord],
    period: Period,
    district: str | None = None,
) -> Awards:
    """Score every station over *period* and rank stations (within *district*, or the
    network, and per district) and managers."""
    table = score_stations(search, stores, reports, audit, period)
    names = sorted({d for d in table.districts if d})
    if district is not None and district not in names:
        raise InvalidInputError("district", f"Expected one of {', '.join(names)}, got {district!r}")
    per = {d: rank_stations(table, d) for d in ([district] if district else names)}
    stations = rank_stations(table, district)
    managers = rank_managers(table, tokens, audit, reports, search, district)
    total = float(table.visits.sum())
    synth = _synthetic_share(stores, period)
    return Awards(period, district, table, stations, per, managers, synth if total else 0.0)


def _synthetic_share(stores: UsageStores, period: Period) -> float:
    parts, _ = stores.row_parts(period.first, period.last)
    total = sum(float(p.count.sum()) for p in parts)
    synthetic = sum(float(p.count[p.source == SOURCE_SYNTHETIC].sum()) for p in parts)
    return synthetic / total if total else 0.0


# -- CSV and XLSX -----------------------------------------------------------------------------------

STATION_COLUMNS = [
    "rank",
    "district",
    "id",
    "name",
    "score",
    "ranked",
    "not_ranked_because",
    "visits",
    "days_with_data",
    "known_weight_share",
]


def station_table(awards: Awards) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the stations: rank, score and each component's value and points
    (read from the score table's columns, without building each station's details)."""
    head = STATION_COLUMNS + [f"{c}_{x}" for c in COMPONENTS for x in ("value", "points")]
    t = awards.table
    cols = t._columns()
    rows = []
    for j, rank in awards.stations.entries:
        vals, pts = cols["values"][j], cols["points"][j]
        score = cols["score"][j]
        rows.append(
            [
                rank,
                t.districts[j] or None,
                t.ids[j],
                t.names[j],
                None if score != score else score,
                bool(t.ranked[j]),
                "; ".join(t.reasons[j]),
                cols["visits"][j],
                cols["days"][j],
                cols["known"][j],
            ]
            + [None if x != x else x for k in range(len(COMPONENTS)) for x in (vals[k], pts[k])]
        )
    return head, rows


MANAGER_COLUMNS = [
    "rank",
    "token_id",
    "name",
    "stations",
    "ranked_stations",
    "mean_station_score",
    "verifications",
    "verifications_expected",
    "problem_reports",
    "score",
    "ranked",
    "not_ranked_because",
]


def manager_table(awards: Awards) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for m in awards.managers:
        rows.append(
            [
                m["rank"],
                m["token_id"],
                m["name"],
                " ".join(m["stations"]),
                m["ranked_stations"],
                m["mean_station_score"],
                m["verifications"],
                m["verifications_expected"],
                m["problem_reports"],
                m["score"],
                m["ranked"],
                "; ".join(m["not_ranked_because"]),
            ]
        )
    return MANAGER_COLUMNS, rows


def to_csv(head: list[str], rows: list[list[Any]]) -> str:
    """CSV text (UTF-8 with a BOM, so that spreadsheet programs read Chinese names)."""
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(head)
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return out.getvalue()


def to_xlsx(awards: Awards) -> bytes:
    """A workbook: Stations, Managers, Rules."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Stations"
    for title, (head, rows) in (
        ("Stations", station_table(awards)),
        ("Managers", manager_table(awards)),
    ):
        if title != "Stations":
            ws = wb.create_sheet(title)
        ws.append(head)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for r in rows:
            ws.append(r)
        ws.freeze_panes = "A2"
    rules = wb.create_sheet("Rules")
    rules.append(["period", awards.period.label])
    rules.append(["scope", awards.district or "network"])
    rules.append(["synthetic share of visits", round(awards.synthetic_share, 3)])
    rules.append(["rules", awards.rules_text()])
    rules.append(["weights file", awards.table.rules.source])
    for c, w in awards.table.rules.weights.items():
        rules.append([f"weight: {c}", w])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# -- HTML --------------------------------------------------------------------------------------------


def _e(x: object) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def bar_chart(title: str, rows: Sequence[dict[str, Any]]) -> str:
    """An inline SVG of horizontal bars: the ranked stations' scores (0–100)."""
    bars = [r for r in rows[:CHART_BARS] if r["ranked"]]
    label_w, bar_w, row_h, top = 330, 300, 22, 26
    height = top + row_h * max(len(bars), 1) + 18
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" width="{label_w + bar_w + 60}" '
        f'height="{height}" viewBox="0 0 {label_w + bar_w + 60} {height}">',
        f"<title>{_e(title)}</title>",
        f'<text x="0" y="16" class="ct">{_e(title)}</text>',
    ]
    for k in (0, 50, 100):
        x = label_w + bar_w * k / 100
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 14}" class="grid"/>'
        )
        parts.append(f'<text x="{x:.1f}" y="{height - 2}" class="ax">{k}</text>')
    for j, r in enumerate(bars):
        y = top + j * row_h
        w = bar_w * max(float(r["score"]), 0.0) / 100
        name = r["name"] if len(r["name"]) <= 20 else r["name"][:19] + "…"
        cls = "bar win" if r["rank"] == 1 else "bar"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" class="lb">{_e(r["rank"])}. {_e(name)}</text>'
        )
        parts.append(
            f'<rect class="{cls}" x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}">'
            f"<title>{_e(r['name'])}: {_e(r['score'])}</title></rect>"
        )
        parts.append(
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" class="val">{_e(r["score"])}</text>'
        )
    if not bars:
        parts.append(f'<text x="{label_w}" y="{top + 14}" class="ax">no station ranked</text>')
    parts.append("</svg>")
    return "".join(parts)


def _components_table(row: dict[str, Any]) -> str:
    body = []
    for c in row["components"]:
        detail = c["detail"] or {}
        text = ", ".join(
            f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in detail.items()
            if v not in (None, [], "")
        )
        body.append(
            f"<tr><td>{_e(c['component'])}</td><td class=n>{_e(c['value'] if c['value'] is not None else 'no data')}</td>"
            f"<td class=n>{_e(c['weight'])}</td><td class=n>{_e(c['points'] if c['points'] is not None else '–')}</td>"
            f"<td class=d>{_e(text)}</td></tr>"
        )
    return (
        '<table class="comp"><thead><tr><th>component</th><th>value (0–1)</th><th>weight</th>'
        "<th>points</th><th>from the data</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )


CSS = """
@page{size:A4 portrait;margin:14mm}
body{font:12px/1.45 "Noto Sans CJK SC","Microsoft YaHei",sans-serif;color:#222;margin:0 auto;max-width:190mm}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 6px;border-bottom:1px solid #ccc}
.meta{color:#555}.warn{background:#fff3cd;border:1px solid #e0c36b;padding:6px 8px;margin:8px 0}
section.district{page-break-inside:avoid;break-inside:avoid}
svg.chart .ct{font-weight:bold;font-size:13px}svg.chart .lb{text-anchor:end;font-size:11px}
svg.chart .val,svg.chart .ax{font-size:10px;fill:#444}svg.chart .ax{text-anchor:middle}
svg.chart .bar{fill:#4c78a8}svg.chart .bar.win{fill:#e45756}svg.chart .grid{stroke:#ddd}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{border:1px solid #ddd;padding:2px 5px;text-align:left;vertical-align:top}
td.n{text-align:right;white-space:nowrap}td.d{color:#555;font-size:11px}th{background:#f3f3f3}
.winner{border:1px solid #e45756;padding:6px 8px;margin:6px 0}
"""


def to_html(awards: Awards) -> str:
    """The printable report: rules, per-district charts and winners, managers."""
    p = awards.period
    scope = awards.district or "network"
    out = [
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>",
        f"<title>Yizhan awards {_e(p.label)} – {_e(scope)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>驿站评选 Station awards {_e(p.label)}</h1>",
        f'<p class="meta">{_e(p.first)} – {_e(p.last)} · {_e(scope)} · '
        f"{awards.stations.ranked_count} stations ranked, "
        f"{len(awards.stations) - awards.stations.ranked_count} not ranked (too little data)</p>",
    ]
    if awards.synthetic_share > 0:
        out.append(
            f'<p class="warn">{100 * awards.synthetic_share:.0f}% of the visits in this period '
            "are SYNTHETIC (yizhan usage generate): this report is a demonstration, not an "
            "evaluation.</p>"
        )
    out.append(f"<p>{_e(awards.rules_text())}</p>")
    w = awards.table.rules.weights
    out.append(
        "<table><tr>"
        + "".join(f"<th>{_e(c)}</th>" for c in COMPONENTS)
        + "</tr><tr>"
        + "".join(f"<td class=n>{_e(w[c])}</td>" for c in COMPONENTS)
        + "</tr></table>"
    )
    for name, rows in awards.districts.items():
        out.append(f'<section class="district"><h2>{_e(name or "(no district)")}</h2>')
        out.append(bar_chart(f"{name} {p.label}", rows))
        winners = [rows[k] for k, (_, r) in enumerate(rows.entries) if r == 1]
        for win in winners:
            out.append(
                f'<div class="winner"><b>第一名 Winner: {_e(win["name"])}</b> ({_e(win["id"])}) — score '
                f"{_e(win['score'])}, {_e(win['visits'])} visits{_components_table(win)}</div>"
            )
        n_not = len(rows) - rows.ranked_count
        if n_not:
            first_not = rows[rows.ranked_count]
            out.append(
                f'<p class="meta">Not ranked: {n_not} (e.g. {_e(first_not["name"])}: '
                f"{_e('; '.join(first_not['not_ranked_because']))})</p>"
            )
        out.append("</section>")
    out.append("<h2>站长 Station managers</h2>")
    if awards.managers:
        out.append(
            "<table><thead><tr><th>rank</th><th>manager</th><th>stations (ranked)</th><th>mean station score</th>"
            "<th>verifications (expected)</th><th>problem reports</th><th>score</th></tr></thead><tbody>"
        )
        for m in awards.managers:
            out.append(
                f"<tr><td>{_e(m['rank'] if m['rank'] is not None else 'not ranked')}</td><td>{_e(m['name'])}</td>"
                f"<td class=n>{len(m['stations'])} ({m['ranked_stations']})</td><td class=n>{_e(m['mean_station_score'])}</td>"
                f"<td class=n>{m['verifications']} ({m['verifications_expected']})</td><td class=n>{m['problem_reports']}</td>"
                f"<td class=n>{_e(m['score'])}</td></tr>"
            )
        out.append("</tbody></table>")
    else:
        out.append('<p class="meta">No manager tokens (yizhan token create --role manager).</p>')
    out.append(
        f'<p class="meta">Weights: {_e(awards.table.rules.source)} · Yizhan</p></body></html>'
    )
    return "".join(out)


__all__ = [
    "Awards",
    "bar_chart",
    "build_awards",
    "manager_table",
    "station_table",
    "to_csv",
    "to_html",
    "to_xlsx",
]

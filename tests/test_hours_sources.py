"""Hours converted from real sources: per-day columns (Toronto), weekday/weekend HHMM
(Korea MOIS) and seasonal Catalan/Spanish period tables (Barcelona). The real files are
in tests/data/hours (see SOURCE.txt)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import opening_hours
import pytest

from yizhan.stations.hours import hours_error
from yizhan.stations.importing import (
    DayColumns,
    HoursResult,
    hours_from_day_columns,
    hours_from_mois_row,
    hours_from_period_table,
    hours_from_weekday_weekend,
    parse_clock,
)

DATA = Path(__file__).resolve().parent / "data" / "hours"


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("0900", 540),
        ("900", 540),
        ("09:00", 540),
        ("9.30", 570),
        ("9", 540),
        ("2400", 1440),
        ("0000", 0),
        ("24:00", 1440),
        ("2430", None),
        ("0960", None),
        ("noon", None),
        ("", None),
    ],
)
def test_parse_clock(text: str, minutes: int | None) -> None:
    assert parse_clock(text) == minutes


# -- per-day columns ---------------------------------------------------------------------------

SPEC = DayColumns.pattern()
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def row(*pairs: tuple[str, str]) -> dict[str, str]:
    out = {}
    for d, (o, c) in zip(DAYS, pairs, strict=True):
        out[f"{d}_open"], out[f"{d}_close"] = o, c
    return out


WEEK = ("0900", "1700")
DAY_CASES = [
    # (7 pairs, opening_hours, state, problem words)
    ([WEEK] * 5 + [("CLOSED", "CLOSED")] * 2, "Mo-Fr 09:00-17:00; Sa,Su off", "ok", None),
    ([WEEK] * 7, "Mo-Su 09:00-17:00", "ok", None),
    ([("CALL", "CALL")] * 7, None, "unknown", None),
    ([("", "")] * 7, None, "unknown", None),
    ([("CLOSED", "CLOSED")] * 7, "off", "closed", None),
    ([("ALL_DAY", "ALL_DAY")] * 7, "Mo-Su 00:00-24:00", "ok", None),
    ([("0500", "0000")] * 7, "Mo-Su 05:00-24:00", "ok", None),
    ([("1800", "2400")] * 5 + [("", "")] * 2, "Mo-Fr 18:00-24:00; Sa,Su unknown", "ok", None),
    ([("2200", "0600")] * 7, "Mo-Su 22:00-06:00", "ok", None),
    ([WEEK, ("", ""), WEEK, WEEK, WEEK, ("CALL", "CALL"), ("closed", "closed")],
     "Mo,We-Fr 09:00-17:00; Tu,Sa unknown; Su off", "ok", None),
    ([WEEK] * 6 + [("0900", "")], None, "unknown", "Su '0900'-'': not two clock times"),
    ([WEEK] * 6 + [("9am", "5pm")], None, "unknown", "Su '9am'-'5pm'"),
    ([WEEK] * 6 + [("0900", "0900")], None, "unknown", "opens and closes at the same time"),
]  # fmt: skip


@pytest.mark.parametrize(("pairs", "expected", "state", "problem"), DAY_CASES)
def test_day_columns(
    pairs: list[tuple[str, str]], expected: str | None, state: str, problem: str | None
) -> None:
    res = hours_from_day_columns(row(*pairs), SPEC)
    assert (res.opening_hours, res.state) == (expected, state)
    if problem:
        assert any(problem in p for p in res.problems), res.problems
    else:
        assert res.problems == []


def test_day_columns_blank_can_mean_closed() -> None:
    spec = DayColumns.pattern(blank="closed")
    res = hours_from_day_columns(row(*([WEEK] * 5 + [("", "")] * 2)), spec)
    assert res.opening_hours == "Mo-Fr 09:00-17:00; Sa,Su off"


def test_day_columns_with_holiday_column() -> None:
    cols = dict(SPEC.columns) | {"PH": ("ph_open", "ph_close")}
    r = row(*([WEEK] * 7)) | {"ph_open": "CLOSED", "ph_close": "CLOSED"}
    assert hours_from_day_columns(r, DayColumns(cols)).opening_hours == "Mo-Su 09:00-17:00; PH off"


def toronto() -> list[dict[str, Any]]:
    return json.loads((DATA / "toronto_heat_relief_hours.json").read_text(encoding="utf-8"))


TORONTO_EXPECTED = {
    1: (None, "unknown"),  # CALL every day
    10: (None, "unknown"),  # blank every day
    258: ("Mo-Fr 09:00-20:30; Sa 09:00-17:00; Su 13:30-17:00", "ok"),
    267: ("Mo,Su off; Tu,Th 12:30-20:30; We,Fr 10:00-18:00; Sa 09:00-17:00", "ok"),
    125: ("Mo,Tu,Th,Fr 09:00-15:00; We,Sa,Su unknown", "ok"),
    453: ("off", "closed"),
    469: ("Mo-Fr 05:00-24:00; Sa,Su 07:00-24:00", "ok"),  # "0000" closing = midnight
    490: ("Mo-Su 00:00-24:00", "ok"),  # ALL_DAY
    559: ("Mo 10:00-09:00; Tu-Fr 10:00-20:00; Sa,Su 12:00-20:00", "ok"),  # 1000-0900
}


def test_toronto_per_day_columns() -> None:
    spec = DayColumns.pattern("{day}Open", "{day}Close")
    results = {r["_id"]: hours_from_day_columns(r, spec) for r in toronto()}
    assert len(results) == 52
    for rid, (expr, state) in TORONTO_EXPECTED.items():
        assert (results[rid].opening_hours, results[rid].state) == (expr, state), rid
    assert results[1].notes == ["Mo-Su: CALL read as unknown"]
    assert results[559].notes == ["Mo: 10:00-09:00 read as crossing midnight"]
    assert Counter(r.state for r in results.values()) == {"ok": 49, "unknown": 2, "closed": 1}
    assert all(not r.problems for r in results.values())
    assert all(
        r.opening_hours is None or hours_error(r.opening_hours) is None for r in results.values()
    )


# -- weekday/weekend HHMM (Korea MOIS) ---------------------------------------------------------


WW_CASES = [
    (("0900", "1800", "", "", "N", "N"), "Mo-Fr 09:00-18:00; Sa,Su,PH off", []),
    (("1000", "1800", "", "", "", ""), "Mo-Fr 10:00-18:00; Sa,Su,PH unknown", []),
    (("0900", "1800", "1000", "1700", "Y", ""), "Mo-Fr 09:00-18:00; Sa,Su,PH 10:00-17:00", []),
    (("0900", "1800", "0900", "1800", "N", "N"), "Mo-Fr 09:00-18:00; Sa,Su,PH 09:00-18:00",
     ["weekend/holiday: open flag N but times 0900-1800 given: the times are used"]),
    (("0900", "1800", "", "", "Y", ""), "Mo-Fr 09:00-18:00; Sa,Su,PH unknown",
     ["weekend/holiday: open flag Y but no times: hours unknown"]),
    (("1800", "2400", "", "", "N", "N"), "Mo-Fr 18:00-24:00; Sa,Su,PH off", []),
    (("0000", "2400", "", "", "", ""), "Mo-Fr 00:00-24:00; Sa,Su,PH unknown", []),
    (("2200", "0600", "", "", "N", ""), "Mo-Fr 22:00-06:00; Sa,Su,PH off",
     ["weekday: 22:00-06:00 read as crossing midnight"]),
    (("0900", "1700", "0900", "1700", "Y", "Y"), "Mo-Fr 09:00-17:00; Sa,Su,PH 09:00-17:00",
     ["night opening flag Y: not expressed (the source gives no night times)"]),
    (("", "", "", "", "", ""), None, []),
    (("", "", "", "", "N", ""), "Mo-Fr unknown; Sa,Su,PH off", []),
]  # fmt: skip


@pytest.mark.parametrize(("cells", "expected", "notes"), WW_CASES)
def test_weekday_weekend(cells: tuple[str, ...], expected: str | None, notes: list[str]) -> None:
    res = hours_from_weekday_weekend(*cells)
    assert res.opening_hours == expected and res.notes == notes and res.problems == []


@pytest.mark.parametrize(
    ("cells", "problem"),
    [
        (("0900", "", "", "", "N", ""), "weekday '0900'-'': not two different HHMM times"),
        (("0900", "2500", "", "", "N", ""), "weekday '0900'-'2500': not two different HHMM times"),
        (
            ("0900", "1800", "1000", "1000", "Y", ""),
            "weekend/holiday '1000'-'1000': not two different HHMM times",
        ),
    ],
)
def test_weekday_weekend_unreadable(cells: tuple[str, ...], problem: str) -> None:
    res = hours_from_weekday_weekend(*cells)
    assert res == HoursResult(None, "unknown", [problem], res.notes)


def mois_rows() -> list[dict[str, str]]:
    with (DATA / "mois_heat_shelters_sample_2025.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows[1:]  # the second header line holds Korean labels


def test_mois_sample_every_row_converted() -> None:
    rows = mois_rows()
    assert len(rows) == 100
    results = [hours_from_mois_row(r) for r in rows]
    assert Counter(r.state for r in results) == {"ok": 100}
    assert all(not r.problems for r in results)
    counts = Counter(r.opening_hours for r in results)
    assert counts.most_common(4) == [
        ("Mo-Fr 09:00-18:00; Sa,Su,PH off", 40),
        ("Mo-Fr 10:00-18:00; Sa,Su,PH unknown", 19),
        ("Mo-Fr 09:00-18:00; Sa,Su,PH 09:00-18:00", 12),
        ("Mo-Fr 09:00-21:00; Sa,Su,PH 09:00-21:00", 7),
    ]
    # 2400 closing and 0000-2400 days
    assert counts["Mo-Fr 18:00-24:00; Sa,Su,PH off"] == 1
    assert counts["Mo-Fr 00:00-24:00; Sa,Su,PH unknown"] == 1
    # Conflicting weekend flags are noted, not hidden.
    noted = [r for r in results if any("open flag N but times" in n for n in r.notes)]
    assert len(noted) == 23
    by_name = {r["RSTR_NM"]: hours_from_mois_row(r) for r in rows}
    assert by_name["은행아파트"].opening_hours == "Mo-Fr 09:00-18:00; Sa,Su,PH 09:00-18:00"


# -- Barcelona seasonal period tables ------------------------------------------------------------


def barcelona() -> list[dict[str, Any]]:
    return json.loads((DATA / "barcelona_shelters_hours.json").read_text(encoding="utf-8"))


#: Every shelter whose table could not be read, and exactly what was reported.
BARCELONA_UNREADABLE = {
    "Biblioteca - Facultat de Matemàtiques i Estadística - UPC": ["row 1: period 'Horari al llarg del curs': not understood"],
    "Biblioteca Fernando Arranz - Facultat de Nàutica - UPC": ["row 1: period 'Horari al llarg del curs': not understood"],
    "Biblioteca La Vila de Gràcia – Rosa M. Arquimbau": [
        "row 1: period 'Fins el 17 maig': not understood",
        "row 5: period 'Del 18 maig al 24 de setembre Ampliació horària durant el període de tancament de la Biblioteca Jaume Fuster': not understood",
    ],
    "Biblioteca Nou Barris": [
        "row 4: period 'Primera quinzena de juliol': not understood",
        "row 5: period 'Estiu 2026: Des de mitjan de juliol al 24 setembre': not understood",
    ],
    "Centre Comercial Diagonal Mar": ["row 3: days 'Diumenge, fins el 15 de setembre': not understood"],
    "La Lleialtat Santsenca": ["row 1: days \"De dilluns a divendres excepte festius i dijous 2 d'abril\": not understood"],
    "Museu Etnològic i de Cultures del Món *Parque Montjuïc": ["row 3: hours '': no hours given"],
    "Museu Etnològic i de Cultures del Món *c.  Montcada": ["row 3: hours '': no hours given"],
    "Museu Reial Monestir de Santa Maria de Pedralbes": ["row 7: days 'Festivos Cerrado Viernes Santo, 1 mayo y 24 junio': not understood"],
    "Museu Terra. Sala Barcelona - Fundació Carulla": ["row 1: period 'Fins al juny': not understood"],
    "Aula Ambiental Bosc Turull": [
        "row 1: period 'Horari tardor-hivern': not understood",
        "row 3: period 'Horari primavera-estiu': not understood",
    ],
    "Refugi Climàtic Pati d'Escola Bressol - Escola Bressol Municipal Pau": ["row 2: hours '': no hours given"],
    "Refugi Climàtic Pati d'Escola Bressol - Escola Bressol Municipal Cargol": ["row 2: hours '': no hours given"],
    "Piscina Clapoteig Coberta - Centre Esportiu Municipal Can Felipa": ["row 2: days 'Dies no dprefinits': not understood"],
    "Piscina Descoberta - Centre Esportiu Municipal de Sant Sebastià": ["row 3: days 'Diumenge i festius del 3 de maig al 30 de setembre': not understood"],
}  # fmt: skip

BARCELONA_EXPECTED = {
    "Casal de Barri Can Travi de la Vall d'Hebron":
        "Sep-Jul off; Sep-Jul Mo-Fr 10:00-14:00,16:00-21:00; Aug off; Aug Mo-Su off",
    "Centre Esportiu Municipal Cotxeres":
        "Mo-Fr 07:00-23:00; Sa 09:00-20:00; Su,PH 09:00-14:00",
    "Llac - Parc de la Creueta del Coll":
        "2025 Jun 06-Sep 06 off; 2025 Jun 06-Sep 06 Mo-Fr 09:30-19:30; 2025 Jun 06-Sep 06 Sa,Su 10:00-20:00",
    "Centre Comercial Arenas de Barcelona":
        "Oct 01-May 31 off; Oct 01-May 31 Mo-Su 09:00-21:00; Jun 01-Sep 30 off; Jun 01-Sep 30 Mo-Su 10:00-22:00",
    "Refugi climàtic - Seu del Districte de les Corts":
        "Sep 01-Aug 01 off; Sep 01-Aug 01 Mo-Fr 07:30-21:00; Aug 02-Aug 22 off; "
        "Aug 02-Aug 22 Mo-Fr 07:30-18:00; Aug 23-Aug 31 off; Aug 23-Aug 31 Mo-Fr 07:30-21:00",
}  # fmt: skip


def test_barcelona_every_table_converted_or_reported() -> None:
    records = barcelona()
    assert len(records) == 572
    with_hours = [r for r in records if r["opening_hours_raw"]]
    assert len(with_hours) == 490
    results = {r["name"]: hours_from_period_table(r["opening_hours_raw"]) for r in with_hours}
    assert Counter(r.state for r in results.values()) == {"ok": 475, "unknown": 15}
    unreadable = {n: r.problems for n, r in results.items() if r.state != "ok"}
    assert unreadable == BARCELONA_UNREADABLE
    for name, res in results.items():
        if res.state == "ok":
            assert res.opening_hours is not None and hours_error(res.opening_hours) is None, name
            assert res.problems == []
        else:
            assert res.opening_hours is None
    for name, expected in BARCELONA_EXPECTED.items():
        assert results[name].opening_hours == expected, name


POBLE_SEC = [
    # The library's year-round hours, a summer 2026 period, an exception day, August closed.
    ("2026-06-22T16:00", "open"),  # Monday, 15-20
    ("2026-06-23T11:00", "open"),  # Tuesday 23 June: 09:30-13:30 only
    ("2026-06-23T16:00", "closed"),
    ("2026-06-25T11:00", "open"),  # summer 2026: Thursday 09:30-13:30
    ("2026-06-27T11:00", "closed"),  # summer 2026: no Saturdays
    ("2026-06-20T11:00", "open"),  # before summer: Saturday 10-14
    ("2026-08-10T16:00", "closed"),  # August closed
    ("2026-09-07T16:00", "open"),  # September: Monday 15-20
]


@pytest.mark.parametrize(("when", "state"), POBLE_SEC)
def test_barcelona_conversion_means_what_the_table_says(when: str, state: str) -> None:
    [rec] = [r for r in barcelona() if r["name"] == "Biblioteca El Poble-sec – Francesc Boix"]
    res = hours_from_period_table(rec["opening_hours_raw"])
    assert res.opening_hours is not None
    oh = opening_hours.OpeningHours(res.opening_hours)
    assert str(oh.state(datetime.fromisoformat(when))[0]) == state


PERIOD_CASES = [
    ([["De setembre a juliol", "De dilluns a divendres", "de 09.00 h a 14.00 h"],
      ["Agost", "Tots els dies tancat", ""]],
     "Sep-Jul off; Sep-Jul Mo-Fr 09:00-14:00; Aug off"),
    ([["", "De martes a domingo y festivos", "de 10:00 h a 20:00 h"]], "Tu-Su,PH 10:00-20:00"),
    ([["", "Diumenge i  festius", "de 09.00\xa0h a 14.00\xa0h"]], "Su,PH 09:00-14:00"),
    ([["", "Dissabte Tancat 18 i 25 juliol", "d'11.00 h a 14.00 h"]],
     "Sa 11:00-14:00; Jul 18,Jul 25 Sa off"),
    ([["Estiu 2026 Del 24 juny al 31 juliol", "Dilluns, dimecres i divendres", "de 19.00 h a 01.00 h"]],
     "2026 Jun 24-Jul 31 off; 2026 Jun 24-Jul 31 Mo,We,Fr 19:00-01:00"),
    ([["", "La Nit dels Museus 2026: 16 de maig", "de 19.00 h a 01.00 h"]], "2026 May 16 19:00-01:00"),
    ([["", "Cada dia", "de 06.45 h a 00.00 h"]], "Mo-Su 06:45-24:00"),
    ([["", "Tots els dies", "Obert 24 hores"]], "Mo-Su 00:00-24:00"),
    ([["", "Domingo Festivos cerrado", "de 10.00 h a 14.00 h"]], "Su 10:00-14:00; PH off"),
    ([["De l'1 Septiembre a l'1 Agosto", "De dilluns a divendres", "de 07.30 h a 21.00 h"]],
     "Sep 01-Aug 01 off; Sep 01-Aug 01 Mo-Fr 07:30-21:00"),
    ([["", "Cada dia", "de 8.00 hores fins al capvespre"]], "Mo-Su 08:00-sunset"),
]  # fmt: skip


@pytest.mark.parametrize(("rows", "expected"), PERIOD_CASES)
def test_period_table_cases(rows: list[list[str]], expected: str) -> None:
    res = hours_from_period_table(rows)
    assert (res.opening_hours, res.problems) == (expected, [])


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([["Fins al juny", "Cada dia", "de 09.00 h a 14.00 h"]], "row 1: period 'Fins al juny'"),
        ([["", "Dies no dprefinits", "de 09.00 h a 14.00 h"]], "row 1: days 'Dies no dprefinits'"),
        ([["", "Cada dia", "Matins"]], "row 1: hours 'Matins': not understood"),
        ([["", "Cada dia", ""]], "row 1: hours '': no hours given"),
        ([["Agost", "", "de 09.00 h a 14.00 h"]], "row 1: no days given and none above"),
    ],
)
def test_period_table_reports_what_it_cannot_read(rows: list[list[str]], problem: str) -> None:
    res = hours_from_period_table(rows)
    assert res.opening_hours is None and res.state == "unknown"
    assert any(p.startswith(problem) for p in res.problems), res.problems

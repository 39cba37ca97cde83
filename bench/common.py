"""Shared benchmark helpers: the 100,000-station Korean registry, timing, tables, machine info.

The registry is built from the real 17,083 valid Korean civil-defence shelters of
``korea-civil-defense-shelters-national`` (6 rows with broken coordinates such as
``-1.#IND`` or empty are skipped), each kept once at its real position and then replicated
with a seeded uniform jitter of ±200 m per axis up to 100,000 stations. Properties are
realistic and cover the format: name (the shelter's name; copies get a ``(n)`` suffix),
``kind: station``, a category, a set of amenities, a status (about 90 % operational),
an address and district from the source, opening hours for most, and so on.

The file is written to ``bench/out/`` (git-ignored) and reused while its parameters
(encoded in the file name) do not change.
"""

from __future__ import annotations

import csv
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out"
DATA = Path(os.environ.get("YIZHAN_SHARED_DATA", "/work/shared/data"))
SHELTERS_CSV = (
    DATA / "korea-civil-defense-shelters-national" / "korea_civil_defense_shelters_2023.csv"
)

#: Mean Earth radius (IUGG), the same sphere Yizhan uses; peers are given this radius too.
EARTH_RADIUS_M = 6_371_008.8
M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0

N_STATIONS = 100_000
JITTER_M = 200.0
SEED = 20_260_715
#: Bump when the generated registry changes, so a stale cached file is not reused.
REGISTRY_FORMAT = 1

# Realistic property values (vocabularies of yizhan.stations.vocab).
CATEGORIES = [
    ("union_station", 0.35),
    ("bank_outlet", 0.20),
    ("cooling_center", 0.15),
    ("hydration_point", 0.10),
    ("smart_station", 0.10),
    ("other", 0.10),
]
STATUSES = [
    ("operational", 0.90),
    ("temporarily_closed", 0.04),
    ("planned", 0.03),
    ("removed", 0.03),
]
AMENITIES = [
    # (name, probability a station offers it); order is the vocabulary's order.
    ("drinking_water", 0.95),
    ("toilet", 0.70),
    ("seating", 0.90),
    ("air_conditioning", 0.75),
    ("heating", 0.45),
    ("microwave", 0.40),
    ("hot_meals", 0.05),
    ("phone_charging", 0.80),
    ("ebike_charging", 0.15),
    ("wifi", 0.55),
    ("first_aid", 0.60),
    ("heatstroke_medicine", 0.35),
    ("aed", 0.10),
    ("nursing_room", 0.05),
    ("child_care", 0.02),
    ("shower", 0.03),
    ("lockers", 0.05),
    ("rain_gear", 0.20),
    ("repair_tools", 0.15),
    ("wheelchair_accessible", 0.30),
    ("truck_parking", 0.03),
    ("ebike_parking", 0.10),
    ("reading", 0.25),
]
OPENING_HOURS = [
    ("24/7", 0.15),
    ("Mo-Fr 09:00-18:00", 0.25),
    ("Mo-Fr 09:00-18:00; Sa 09:00-13:00; PH off", 0.10),
    ("08:00-20:00", 0.15),
    ("Mo-Su 07:00-22:00", 0.10),
    (None, 0.25),
]
OPERATORS = ["행정안전부", "지방자치단체", "한국노동조합총연맹", "농협은행", "국민은행", None]


@dataclass(frozen=True)
class Shelters:
    """The valid rows of the shelter CSV."""

    lon: np.ndarray
    lat: np.ndarray
    name: list[str]
    address: list[str]
    number: list[str]
    skipped: int


def load_shelters(path: Path = SHELTERS_CSV) -> Shelters:
    """The shelters with usable coordinates (rows like ``-1.#IND`` or empty are skipped)."""
    lon: list[float] = []
    lat: list[float] = []
    names: list[str] = []
    addrs: list[str] = []
    nums: list[str] = []
    skipped = 0
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                y = float(row["위도(EPSG4326)"])
                x = float(row["경도(EPSG4326)"])
            except (TypeError, ValueError):
                skipped += 1
                continue
            if not (
                math.isfinite(x) and math.isfinite(y) and 32.5 < y < 39.0 and 124.0 < x < 132.0
            ):
                skipped += 1
                continue
            lon.append(x)
            lat.append(y)
            names.append((row["시설명"] or "").strip() or f"대피소 {row['번호']}")
            addrs.append((row["도로명전체주소"] or "").strip())
            nums.append(str(row["번호"]).strip())
    return Shelters(np.array(lon), np.array(lat), names, addrs, nums, skipped)


def jitter_uniform(
    rng: np.random.Generator, lon: np.ndarray, lat: np.ndarray, half_width_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points moved by a uniform offset of up to ±*half_width_m* metres east and north."""
    dy = rng.uniform(-half_width_m, half_width_m, lon.shape) / M_PER_DEG
    dx = rng.uniform(-half_width_m, half_width_m, lon.shape) / (M_PER_DEG * np.cos(np.radians(lat)))
    return lon + dx, lat + dy


def _pick(rng: np.random.Generator, table: Sequence[tuple[Any, float]], n: int) -> list[Any]:
    values = [v for v, _ in table]
    p = np.array([w for _, w in table], dtype=float)
    idx = rng.choice(len(values), size=n, p=p / p.sum())
    return [values[i] for i in idx]


def _district(address: str) -> str | None:
    parts = address.split()
    return " ".join(parts[:2]) if len(parts) >= 2 else None


def make_document(
    n: int = N_STATIONS, seed: int = SEED, jitter_m: float = JITTER_M
) -> dict[str, Any]:
    """The registry document: every valid shelter once, then jittered copies up to *n*."""
    sh = load_shelters()
    m = sh.lon.size
    rng = np.random.default_rng(seed)
    src = np.concatenate([np.arange(m), rng.integers(0, m, max(n - m, 0))])[:n]
    lon = sh.lon[src].copy()
    lat = sh.lat[src].copy()
    jl, ja = jitter_uniform(rng, lon[m:], lat[m:], jitter_m)
    lon[m:], lat[m:] = jl, ja
    copy_no = np.zeros(n, dtype=np.int64)
    seen = np.zeros(m, dtype=np.int64)
    for i in range(m, n):
        seen[src[i]] += 1
        copy_no[i] = seen[src[i]]
    cats = _pick(rng, CATEGORIES, n)
    stats = _pick(rng, STATUSES, n)
    hours = _pick(rng, OPENING_HOURS, n)
    ops = [OPERATORS[i] for i in rng.integers(0, len(OPERATORS), n)]
    am_p = np.array([p for _, p in AMENITIES])
    am_has = rng.random((n, len(AMENITIES))) < am_p
    caps = rng.integers(5, 400, n)
    verified = rng.integers(0, 365, n)
    # Ids are shuffled against file order so the tie-break rank is not the position.
    perm = rng.permutation(n)
    base = date(2025, 7, 1)
    features = []
    for i in range(n):
        j = int(src[i])
        props: dict[str, Any] = {
            "name": sh.name[j] if copy_no[i] == 0 else f"{sh.name[j]} ({copy_no[i] + 1})",
            "kind": "station",
            "category": cats[i],
            "address": sh.address[j] or None,
            "district": _district(sh.address[j]),
            "amenities": [a for (a, _), has in zip(AMENITIES, am_has[i], strict=True) if has],
            "status": stats[i],
            "capacity": int(caps[i]),
            "last_verified_at": (base + timedelta(days=int(verified[i]))).isoformat(),
            "source": "korea-civil-defense-shelters-national (2023), replicated for benchmarks",
            "coord_origin": "geocoded",
            "external_ids": {"kr_shelter": sh.number[j]},
        }
        if ops[i] is not None:
            props["operator"] = ops[i]
        if hours[i] is not None:
            props["opening_hours"] = hours[i]
        if copy_no[i]:
            props["guessed"] = ["category", "amenities", "opening_hours"]
        props = {k: v for k, v in props.items() if v is not None}
        features.append(
            {
                "type": "Feature",
                "id": f"kr-{int(perm[i]):06d}",
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(float(lon[i]), 7), round(float(lat[i]), 7)],
                },
                "properties": props,
            }
        )
    return {
        "type": "FeatureCollection",
        "name": f"Benchmark registry: {n:,} stations from Korean civil-defence shelters",
        "license": "see korea-civil-defense-shelters-national/SOURCE.txt",
        "features": features,
    }


def registry_path(n: int = N_STATIONS, seed: int = SEED) -> Path:
    """Where the benchmark registry with these parameters lives."""
    return OUT / f"korea-stations-{n}-s{seed}-j{int(JITTER_M)}-v{REGISTRY_FORMAT}.geojson"


def ensure_registry(n: int = N_STATIONS, seed: int = SEED, quiet: bool = False) -> Path:
    """Write the benchmark registry file (once) and return its path."""
    path = registry_path(n, seed)
    if path.exists():
        return path
    import orjson

    t0 = time.perf_counter()
    doc = make_document(n, seed)
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(doc) + b"\n")
    tmp.replace(path)
    if not quiet:
        log(
            f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
    return path


def query_points(n: int, seed: int, radius_m: float = 2000.0) -> tuple[np.ndarray, np.ndarray]:
    """*n* query points where workers are: a random shelter moved by up to ±*radius_m*."""
    sh = load_shelters()
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, sh.lon.size, n)
    return jitter_uniform(rng, sh.lon[pick], sh.lat[pick], radius_m)


# -- timing ---------------------------------------------------------------------------------
def log(msg: str) -> None:
    """Progress line on stderr (tables go to stdout)."""
    print(msg, file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> tuple[float, Any]:
    """Median wall time of *repeat* calls of *fn* (after *warmup* calls), and the last result."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def per_call_ns(fn: Callable[..., Any], args: Iterable[tuple[Any, ...]]) -> np.ndarray:
    """Wall time of each call ``fn(*a)``, in nanoseconds (GC off while timing)."""
    clock = time.perf_counter_ns
    out = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for a in args:
            t0 = clock()
            fn(*a)
            out.append(clock() - t0)
    finally:
        if gc_was:
            gc.enable()
    return np.array(out, dtype=np.int64)


def latency(
    fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], rounds: int = 5, warmup: int = 200
) -> tuple[float, float]:
    """Single-call latency of *fn* over the argument tuples: (median of per-round medians,
    median of per-round p99), seconds."""
    for a in args[:warmup]:
        fn(*a)
    med, p99 = [], []
    for _ in range(rounds):
        ns = per_call_ns(fn, args)
        med.append(float(np.median(ns)))
        p99.append(float(np.percentile(ns, 99)))
    return statistics.median(med) / 1e9, statistics.median(p99) / 1e9


def timer_overhead_ns() -> float:
    """Median cost of one timed no-op call, to read the single-call figures against."""
    ns = per_call_ns(lambda: None, [()] * 20_000)
    return float(np.median(ns))


# -- results --------------------------------------------------------------------------------
def row(
    name: str,
    yizhan_s: float | None,
    peer: str,
    peer_s: float | None,
    note: str = "",
    target: str | None = None,
    passed: bool | None = None,
) -> dict[str, Any]:
    """One result row: ``ratio`` is ``peer_s / yizhan_s`` (how many times faster Yizhan is)."""
    ratio = None
    if yizhan_s and peer_s is not None and yizhan_s > 0:
        ratio = peer_s / yizhan_s
    r: dict[str, Any] = {
        "name": name,
        "yizhan_s": yizhan_s,
        "peer": peer,
        "peer_s": peer_s,
        "ratio": ratio,
        "note": note,
    }
    if target is not None:
        r["target"] = target
        r["pass"] = passed
    return r


def fmt_seconds(s: float | None) -> str:
    """A duration with a unit that keeps 3 significant figures (µs, ms or s)."""
    if s is None or (isinstance(s, float) and not math.isfinite(s)):
        return "–"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1.0:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_ratio(r: float | None) -> str:
    if r is None or not math.isfinite(r):
        return "–"
    return f"{r:,.0f}×" if r >= 100 else f"{r:.3g}×"


def mark(passed: bool | None) -> str:
    return "" if passed is None else ("PASS" if passed else "MISS")


def target_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One ``PASS``/``MISS`` line per benchmark that has a target."""
    out: dict[str, str] = {}
    for r in rows:
        if "target" not in r or r["name"] in out:
            continue
        value = fmt_seconds(r.get("yizhan_s"))
        if r.get("yizhan_s") is None and r.get("note"):
            value = str(r["note"]).split(";")[0]  # e.g. a size, which is not a time
        elif str(r["target"]).startswith("≥") and r.get("ratio") is not None:
            value = f"{r['ratio']:.0%}"  # a share, e.g. throughput relative to /health
        out[r["name"]] = (
            f"{mark(r.get('pass')) or '?'}  {r['name']}: {value} (target {r['target']})"
        )
    return list(out.values())


def check_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The correctness checks rows carry (key ``check``), each once."""
    return list(dict.fromkeys(str(r["check"]) for r in rows if r.get("check")))


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as a Markdown table (``target``/``pass`` columns shown when any row has them)."""
    has_target = any("target" in r for r in rows)
    head = ["benchmark", "yizhan"]
    if has_target:
        head += ["target", ""]
    head += ["peer", "peer time", "peer / yizhan", "note"]
    align = (
        ["---", "---:"] + (["---:", ":---:"] if has_target else []) + ["---", "---:", "---:", "---"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for r in rows:
        cells = [str(r.get("name", "")), fmt_seconds(r.get("yizhan_s"))]
        if has_target:
            cells += [str(r.get("target") or ""), mark(r.get("pass"))]
        cells += [
            str(r.get("peer") or ""),
            fmt_seconds(r.get("peer_s")),
            fmt_ratio(r.get("ratio")),
            str(r.get("note") or "").replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- machine --------------------------------------------------------------------------------
def _cpu_model() -> str:
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    extra = [f"{k} {fields[k]}" for k in ("cpu family", "model") if k in fields]
    if "avx512f" in fields.get("flags", "").split():
        extra.append("AVX-512")
    return f"{name} ({', '.join(extra)})" if extra else name


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def _version(mod: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(mod)
    except PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """CPU, cores, RAM, OS and the versions that matter for these numbers."""
    ram = _ram_gb()
    info = {
        "CPU": _cpu_model(),
        "cores": f"{os.cpu_count()} logical (affinity: {len(os.sched_getaffinity(0))})",
        "RAM": f"{ram:.1f} GiB" if ram else "unknown",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
    }
    for pkg in (
        "numpy",
        "scipy",
        "pykdtree",
        "pydantic",
        "orjson",
        "fastapi",
        "uvicorn",
        "scikit-learn",
        "geopandas",
        "pyogrio",
        "shapely",
    ):
        info[pkg] = _version(pkg)
    return info


def have(module: str) -> bool:
    """Whether *module* can be imported (a peer library may be missing)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False

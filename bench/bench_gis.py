"""OGC API – Features and exports over 100,000 stations (issue 14).

1. ``/ogc/collections/stations/items?limit=1000`` with a bbox (Seoul and around) and a CQL2
   filter (``category = 'union_station' AND status = 'operational'``), served by ``yizhan
   serve``, beside pygeoapi's GeoJSON provider serving the same registry file under
   uvicorn (its Starlette app). pygeoapi's GeoJSON provider evaluates no CQL2 ``filter``
   (only its SQL and search-engine providers do), so it gets the same selection as
   property filters (``?category=union_station&status=operational``) with the bbox; Yizhan
   is measured both ways. Each server gets sequential requests from one client on
   127.0.0.1 after a warm-up; a row is the mean time per request (its inverse is the
   throughput of one connection) and the answers' ``numberMatched`` are checked equal.
2. Export of the 100,000 stations to GeoPackage and CSV (``yizhan.query.export``: the
   table of ``yizhan export`` and ``/export/stations.{ext}``) beside ``GeoDataFrame.to_file``
   (pyogrio) of the same table as a GeoDataFrame, built beforehand (not timed).

pygeoapi is not a dependency: the benchmark installs it (with uvicorn) into its own
virtual environment, ``bench/out/pygeoapi-venv`` (pygeoapi's wheel carries a top-level
``tests`` package that would shadow Yizhan's ``tests`` in the project's environment).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import common
from bench_nearest import _free_port, _server_env, serving
from common import OUT, log, row

from yizhan.query.export import flatten_stations, write_file
from yizhan.stations.jsonio import read_document

TITLE = "OGC API – Features and exports, 100,000 stations (issue 14)"
BBOX = "126.7,37.4,127.3,37.7"  # Seoul
CQL2 = "category = 'union_station' AND status = 'operational'"
PROPS = {"category": "union_station", "status": "operational"}
LIMIT = 1000
REQUESTS = 40
PEER_REQUESTS = 4
PEER_VERSION = "0.21"
PEER_VENV = OUT / "pygeoapi-venv"
PEER_PACKAGES = ("pygeoapi==0.21.0", "uvicorn", "starlette")


def peer_python() -> Path:
    """The Python of the pygeoapi environment, made (once) when missing."""
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        log(f"installing {' '.join(PEER_PACKAGES)} into {PEER_VENV.relative_to(common.ROOT)}")
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
    return py


def _get(url: str, timeout: float = 300.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        doc: dict[str, Any] = json.loads(r.read())
    return doc


def _mean_request_s(url: str, n: int, warmup: int = 1) -> tuple[float, dict[str, Any]]:
    doc: dict[str, Any] = {}
    for _ in range(warmup):
        doc = _get(url)
    t0 = time.perf_counter()
    for _ in range(n):
        doc = _get(url)
    return (time.perf_counter() - t0) / n, doc


def _pygeoapi_config(data: Path, port: int, folder: Path) -> Path:
    cfg = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "limits": {"default_items": 10, "max_items": 10000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "bench",
                "description": "bench",
                "keywords": ["bench"],
                "keywords_type": "theme",
                "terms_of_service": "https://example.org",
                "url": "https://example.org",
            },
            "license": {"name": "MIT", "url": "https://example.org"},
            "provider": {"name": "bench", "url": "https://example.org"},
            "contact": {
                "name": "bench",
                "email": "bench@example.org",
                "url": "https://example.org",
            },
        },
        "resources": {
            "stations": {
                "type": "collection",
                "title": "stations",
                "description": "stations",
                "keywords": ["stations"],
                "extents": {
                    "spatial": {
                        "bbox": [124, 33, 132, 39],
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                    }
                },
                "links": [],
                "providers": [
                    {"type": "feature", "name": "GeoJSON", "data": str(data), "id_field": "id"}
                ],
            }
        },
    }
    path = folder / "pygeoapi.yml"
    path.write_text(json.dumps(cfg), encoding="utf-8")  # JSON is YAML
    return path


@contextlib.contextmanager
def pygeoapi_serving(data: Path) -> Iterator[str]:
    """pygeoapi's Starlette app under uvicorn on a free loopback port."""
    folder = Path(tempfile.mkdtemp(prefix="pygeoapi-", dir=OUT))
    port = _free_port()
    cfg = _pygeoapi_config(data, port, folder)
    openapi = folder / "openapi.yml"
    env = {**os.environ, "PYGEOAPI_CONFIG": str(cfg), "PYGEOAPI_OPENAPI": str(openapi)}
    py = peer_python()
    exe = py.parent / "pygeoapi"
    subprocess.run(
        [str(exe), "openapi", "generate", str(cfg), "--output-file", str(openapi)],
        env=env,
        check=True,
        capture_output=True,
    )
    logf = (folder / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(py),
            "-m",
            "uvicorn",
            "pygeoapi.starlette_app:APP",
            "--port",
            str(port),
            "--log-level",
            "error",
        ],
        env=env,
        stdout=logf,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"pygeoapi exited; see {folder / 'server.log'}")
            try:
                _get(base + "/conformance?f=json", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("pygeoapi did not start") from None
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
        logf.close()


def bench_ogc(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    items = "/ogc/collections/stations/items"
    cql_q = urllib.parse.urlencode({"limit": LIMIT, "bbox": BBOX, "filter": CQL2})
    prop_q = urllib.parse.urlencode({"limit": LIMIT, "bbox": BBOX, **PROPS})
    # This checkout's yizhan, whichever one the `yizhan` script was installed from.
    env = {**_server_env(), "PYTHONPATH": str(common.ROOT)}
    with serving(path, env=env) as (base, _, _):
        y_cql, d_cql = _mean_request_s(f"{base}{items}?{cql_q}", REQUESTS)
        y_prop, d_prop = _mean_request_s(f"{base}{items}?{prop_q}", REQUESTS)
    log(f"yizhan: {1 / y_cql:.1f} req/s (CQL2), {1 / y_prop:.1f} req/s (properties)")
    peer_s: float | None = None
    note = ""
    try:
        with pygeoapi_serving(path) as pbase:
            peer_s, d_peer = _mean_request_s(
                f"{pbase}/collections/stations/items?f=json&{prop_q}", PEER_REQUESTS
            )
        same = d_peer.get("numberMatched") == d_cql["numberMatched"] == d_prop["numberMatched"]
        log(f"pygeoapi: {1 / peer_s:.2f} req/s; numberMatched equal: {same}")
        note = (
            f"numberMatched {d_cql['numberMatched']} (equal: {same}); pygeoapi "
            f"{1 / peer_s:.2f} req/s, Yizhan {1 / y_cql:.1f} req/s"
        )
    except (ImportError, OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        note = f"pygeoapi did not run: {exc}"
        log(note)
    peer = "pygeoapi 0.21 GeoJSON provider (bbox + property filters)"
    rows.append(
        row(f"items limit={LIMIT}, bbox + CQL2 filter (per request)", y_cql, peer, peer_s, note)
    )
    rows.append(
        row(
            f"items limit={LIMIT}, bbox + property filters (per request)",
            y_prop,
            peer,
            peer_s,
            "the same selection as query parameters",
        )
    )
    return rows


def bench_export(path: Path) -> list[dict[str, Any]]:
    import geopandas as gpd

    doc = read_document(path)
    feats = [f for f in doc["features"] if f["geometry"]["type"] == "Point"]
    layer = flatten_stations(feats)
    frame = gpd.GeoDataFrame(
        {c: layer.data[c] for c in layer.columns},
        geometry=gpd.points_from_xy(
            [g["coordinates"][0] for g in layer.geometries if g],
            [g["coordinates"][1] for g in layer.geometries if g],
        ),
        crs="EPSG:4326",
    )
    rows = []
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        t = Path(tmp)

        def ours(fmt: str) -> None:
            write_file([flatten_stations(feats)], fmt, t / f"y.{fmt}")

        def peer(fmt: str, driver: str, opts: dict[str, str]) -> None:
            target = t / f"g.{fmt}"
            target.unlink(missing_ok=True)  # GDAL's CSV driver does not overwrite
            frame.to_file(target, driver=driver, engine="pyogrio", **opts)

        for fmt, driver, opts in (("gpkg", "GPKG", {}), ("csv", "CSV", {"GEOMETRY": "AS_WKT"})):
            y_s, _ = common.timed(lambda fmt=fmt: ours(fmt), repeat=3)
            p_s, _ = common.timed(
                lambda fmt=fmt, driver=driver, opts=opts: peer(fmt, driver, opts),
                repeat=3,
            )
            rows.append(
                row(
                    f"export {len(feats):,} stations to {fmt}",
                    y_s,
                    "geopandas.to_file (pyogrio), frame built beforehand",
                    p_s,
                    "Yizhan's time includes flattening the features into the table",
                )
            )

            def peer_whole(fmt: str = fmt, driver: str = driver, opts: Any = opts) -> None:
                whole = gpd.GeoDataFrame.from_features(feats, crs="EPSG:4326")
                whole["amenities"] = whole["amenities"].map(
                    lambda v: ";".join(v) if isinstance(v, list) else v
                )
                whole["guessed"] = whole["guessed"].map(
                    lambda v: ";".join(v) if isinstance(v, list) else v
                )
                target = t / f"w.{fmt}"
                target.unlink(missing_ok=True)
                whole.to_file(target, driver=driver, engine="pyogrio", **opts)

            w_s, _ = common.timed(peer_whole, repeat=3)
            rows.append(
                row(
                    f"export {len(feats):,} stations to {fmt}, from the features",
                    y_s,
                    "GeoDataFrame.from_features + to_file",
                    w_s,
                    "both sides start from the registry's features",
                )
            )
    return rows


def run() -> list[dict[str, Any]]:
    path = common.ensure_registry()
    return [*bench_ogc(path), *bench_export(path)]


if __name__ == "__main__":
    # `python bench/bench_gis.py [ogc|export]`: one part only.
    part = sys.argv[1] if len(sys.argv) > 1 else ""
    where = common.ensure_registry()
    out = bench_ogc(where) if part == "ogc" else bench_export(where) if part == "export" else run()
    print(common.table(out))

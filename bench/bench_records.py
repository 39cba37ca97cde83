"""Benchmark: station proposals and photos on PostgreSQL, per call (the figures in
docs/database.md, "Proposals and photos").

On a throwaway PostgreSQL + PostGIS cluster (``tests/pgcluster.py``) and a registry of 200
stations: 1,000 proposals and 200 photos (1600 × 1200 JPEG) are added through one backend,
then read through a second one (another replica): the proposals' counter look
(``changed``), a listing with nothing new, a photo by id, a station's photos, an image's
bytes, the newest photo of every station; and a proposal added (one transaction under the
proposals' lock). Median and p99 of 300 calls (100 for the adds).

Run ``.venv/bin/python bench/bench_records.py`` (about half a minute).
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

import pgcluster  # noqa: E402

from tests.conftest import make_doc, make_feature  # noqa: E402
from tests.storage_env import fresh_database  # noqa: E402
from yizhan.settings import Settings  # noqa: E402
from yizhan.stations.tokens import Principal  # noqa: E402
from yizhan.storage import open_backend  # noqa: E402
from yizhan.storage.pg_transfer import import_registry  # noqa: E402


def timed(f: Callable[[], Any], n: int = 300) -> str:
    """Median and p99 of *n* calls of *f*."""
    xs = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        xs.append(time.perf_counter() - t0)
    xs.sort()
    return f"median {statistics.median(xs) * 1e3:.3f} ms, p99 {xs[int(n * 0.99)] * 1e3:.3f} ms"


def main() -> int:
    cluster = pgcluster.start_cluster()
    try:
        url = fresh_database(cluster)
        src = Path(tempfile.mkdtemp()) / "r.geojson"
        feats = [make_feature(f"s{i}", 113.6 + i / 1000, 34.7) for i in range(200)]
        src.write_text(json.dumps(make_doc(feats)), encoding="utf-8")
        settings = Settings(database_url=url)
        import_registry(url, src, settings)
        one, two = open_backend(settings), open_backend(settings)
        try:
            for i in range(1000):
                one.proposals.add(f"p{i}", [113.6, 34.7], client=f"c{i}")
            buf = io.BytesIO()
            Image.new("RGB", (1600, 1200), (90, 120, 30)).save(buf, "JPEG")
            admin = Principal("bench", "admin")
            for i in range(200):
                one.photos.add(f"s{i}", buf.getvalue(), admin)
            two.proposals.list()
            source = two.proposals.source
            assert source is not None
            pid = two.photos.for_station("s5")[0].id
            print("proposals: the counter look (changed):", timed(source.changed))
            print("proposals: list of 1,000, nothing new:", timed(two.proposals.list))
            print("photos: by id:", timed(lambda: two.photos.get(pid)))
            print("photos: a station's:", timed(lambda: two.photos.for_station("s5")))
            print("photos: an image's bytes:", timed(lambda: two.photos.content(pid)))
            print("photos: newest of 200 stations:", timed(two.photos.latest_by_station))
            print(
                "proposals: add:",
                timed(lambda: one.proposals.add("x", [113.6, 34.7], client=str(time.time())), 100),
            )
        finally:
            one.close()
            two.close()
    finally:
        cluster.remove()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

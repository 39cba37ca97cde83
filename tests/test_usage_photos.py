"""Station photos: resized, turned upright, re-encoded without EXIF (no GPS position); added by
the station's manager, listed, served, removed."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import make_doc, make_feature
from yizhan.api import create_app
from yizhan.errors import InvalidInputError
from yizhan.settings import Settings
from yizhan.stations.photos import process_image

GPS_IFD = 0x8825
EXIF_IFD = 0x8769


def jpeg_with_gps(size: tuple[int, int] = (3000, 2000), orientation: int = 6) -> bytes:
    img = Image.new("RGB", size, (200, 30, 30))
    img.putpixel((0, 0), (0, 255, 0))  # the top-left corner, to follow the rotation
    exif = img.getexif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    exif[GPS_IFD] = {1: "N", 2: (34.0, 45.0, 28.0), 3: "E", 4: (113.0, 39.0, 55.0)}
    exif.get_ifd(EXIF_IFD)[0x9003] = "2026:07:14 10:11:12"
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    return buf.getvalue()


def test_exif_and_gps_are_stripped_and_the_photo_turned_upright() -> None:
    data = jpeg_with_gps()
    assert b"PhoneMaker" in data and Image.open(io.BytesIO(data)).getexif().get(GPS_IFD)
    p = process_image(data, max_px=1600)
    assert (p.width, p.height) == (1067, 1600)  # rotated 90°, then resized
    assert p.taken_on == date(2026, 7, 14) and p.format == "jpeg"
    out = Image.open(io.BytesIO(p.data))
    assert dict(out.getexif()) == {} and "exif" not in out.info and "icc_profile" not in out.info
    assert b"PhoneMaker" not in p.data and b"Exif" not in p.data
    thumb = Image.open(io.BytesIO(p.thumb))
    assert max(thumb.size) == 400 and dict(thumb.getexif()) == {}


def test_formats() -> None:
    rgba = Image.new("RGBA", (100, 50), (0, 0, 0, 0))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    p = process_image(buf.getvalue())
    assert p.format == "jpeg" and Image.open(io.BytesIO(p.data)).getpixel((5, 5)) == (255, 255, 255)
    buf = io.BytesIO()
    Image.new("RGB", (100, 50)).save(buf, "WEBP")
    assert process_image(buf.getvalue()).format == "webp"
    with pytest.raises(InvalidInputError, match="body: Expected a JPEG, PNG or WebP"):
        process_image(b"GIF89a" + b"\0" * 100)
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, "GIF")
    with pytest.raises(InvalidInputError, match="got GIF"):
        process_image(buf.getvalue())


def test_a_decompression_bomb_is_refused() -> None:
    buf = io.BytesIO()
    Image.new("1", (10000, 7000)).save(buf, "PNG")  # 70 Mpx in a few kilobytes
    assert len(buf.getvalue()) < 100_000
    with pytest.raises(InvalidInputError, match="body: Expected at most 60,000,000 pixels"):
        process_image(buf.getvalue())


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    reg = tmp_path / "reg.geojson"
    reg.write_text(
        json.dumps(make_doc([make_feature("a", 113.6, 34.7), make_feature("b", 113.7, 34.7)]))
    )
    app = create_app(
        Settings(
            registry=reg,
            reload_interval_s=0,
            admin_token="adm-0123456789abcdef",
            photo_max_bytes=200_000,
        )
    )
    with TestClient(app) as c:
        toks = {
            "a": app.state.tokens.create("manager", name="A", stations=["a"])[0],
            "b": app.state.tokens.create("manager", name="B", stations=["b"])[0],
        }
        yield c, toks


def upload(
    c: TestClient, sid: str, data: bytes, tok: str | None, kind: str = "image/jpeg", **q: Any
) -> Any:
    headers = {"Content-Type": kind}
    if tok:
        headers["Authorization"] = f"Bearer {tok}"
    query = "&".join(f"{k}={v}" for k, v in q.items())
    return c.post(f"/stations/{sid}/photos?{query}", content=data, headers=headers)


def test_the_manager_adds_lists_serves_and_removes_photos(api: Any) -> None:
    c, toks = api
    data = jpeg_with_gps((1200, 900), orientation=1)
    assert upload(c, "a", data, None).status_code == 401
    assert upload(c, "a", data, toks["b"]).status_code == 403
    r = upload(c, "a", data, toks["a"])
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["taken_on"] == "2026-07-14" and first["width"] == 1200  # from EXIF
    r = upload(c, "a", data, toks["a"], taken_on="2026-07-20")
    second = r.json()
    listed = c.get("/stations/a/photos").json()["photos"]
    assert [p["id"] for p in listed] == [second["id"], first["id"]]  # newest first
    img = c.get(second["url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert "immutable" in img.headers["cache-control"]
    assert (
        b"PhoneMaker" not in img.content
        and dict(Image.open(io.BytesIO(img.content)).getexif()) == {}
    )
    thumb = c.get(second["thumbnail_url"])
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 400
    as_b = {"Authorization": f"Bearer {toks['b']}"}
    assert c.delete(f"/stations/a/photos/{first['id']}", headers=as_b).status_code == 403
    assert c.delete(f"/stations/b/photos/{first['id']}", headers=as_b).status_code == 404
    r = c.delete(
        f"/stations/a/photos/{first['id']}", headers={"Authorization": f"Bearer {toks['a']}"}
    )
    assert r.status_code == 204
    assert c.get(first["url"]).status_code == 404
    assert [p["id"] for p in c.get("/stations/a/photos").json()["photos"]] == [second["id"]]


def test_bad_uploads(api: Any) -> None:
    c, toks = api
    assert upload(c, "a", b"hello", toks["a"], kind="text/plain").status_code == 415
    r = upload(c, "a", b"not an image", toks["a"])
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "body"]
    future = (date.today() + timedelta(days=3)).isoformat()
    r = upload(c, "a", jpeg_with_gps((200, 100)), toks["a"], taken_on=future)
    assert r.status_code == 422 and "taken_on" in r.text
    big = Image.effect_noise((800, 800), 100).convert("RGB")
    buf = io.BytesIO()
    big.save(buf, "PNG")
    assert len(buf.getvalue()) > 200_000
    assert upload(c, "a", buf.getvalue(), toks["a"], kind="image/png").status_code == 413
    # the larger limit is for photo uploads only: other bodies keep max_body_bytes
    r = c.post(
        "/stations/a/reports", content=b"x" * 70_000, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert upload(c, "nope", b"x", toks["a"]).status_code == 404
    assert c.get("/photos/ph_0000000000000000").status_code == 404
    assert c.get("/photos/..%2f..%2fetc").status_code == 404

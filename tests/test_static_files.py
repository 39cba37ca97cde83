"""The JavaScript/CSS and templates Yizhan ships: they parse, the API serves them so that
browsers cache them, and a wheel carries them (read from the installed package, not the
repository).

``node --check`` needs Node.js (``apt-get install nodejs``): skipped without it, except
under ``CI=true``, where a check that cannot run fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from yizhan.api import create_app
from yizhan.assets import PACKAGES, missing, vendor_dir
from yizhan.maps.runtime import RUNTIME_FILES, runtime_dir, runtime_url
from yizhan.settings import DEFAULT_REGISTRY, Settings

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "yizhan"
IN_CI = os.environ.get("CI", "").lower() == "true"
#: Yizhan's own scripts (the vendored ones are third-party, pinned and verified).
OWN_JS = sorted(
    p for p in PACKAGE.rglob("*.js") if vendor_dir() not in p.parents and "vendor" not in p.parts
)


def cannot_run(reason: str) -> None:
    """Skip, or fail under ``CI=true``: CI must not pass without running a check."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a check that cannot run fails)")
    pytest.skip(reason)


def test_own_scripts_are_found() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in OWN_JS}
    assert "maps/static/yizhan-map/yizhan-map.js" in names
    assert "web/static/find.js" in names


@pytest.mark.parametrize("path", OWN_JS, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_javascript_parses(path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        cannot_run("needs Node.js for `node --check` (apt-get install nodejs)")
        return
    r = subprocess.run(
        [node, "--check", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stderr


def test_node_check_catches_a_syntax_error(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        cannot_run("needs Node.js for `node --check` (apt-get install nodejs)")
        return
    bad = tmp_path / "bad.js"
    bad.write_text("var yz = (function () { return {; })();\n")
    r = subprocess.run([node, "--check", str(bad)], capture_output=True, text=True, check=False)
    assert r.returncode != 0 and "SyntaxError" in r.stderr


def test_runtime_css_braces_balance() -> None:
    css = (runtime_dir() / RUNTIME_FILES["css"]).read_text(encoding="utf-8")
    depth = 0
    for ch in css:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0 and css.count("{") > 50


# -- served by the API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("api")
    path = tmp / "reg.geojson"
    shutil.copyfile(DEFAULT_REGISTRY, path)
    settings = Settings(registry=path, state_dir=tmp / "state", reload_interval_s=0)
    with TestClient(create_app(settings)) as c:
        yield c


def test_api_pages_link_the_runtime_and_it_is_cacheable(client: TestClient) -> None:
    page = client.get("/maps/nearest", params={"lon": 113.65, "lat": 34.76, "k": 2})
    assert page.status_code == 200
    for kind, mime in (("js", "javascript"), ("css", "text/css")):
        url = runtime_url(kind, "/static/vendor/")
        assert url in page.text
        r = client.get(url)
        assert r.status_code == 200, url
        assert mime in r.headers["content-type"]
        assert r.content == (runtime_dir() / RUNTIME_FILES[kind]).read_bytes()
        etag = r.headers["etag"]
        assert r.headers["last-modified"]
        again = client.get(url, headers={"if-none-match": etag})
        assert again.status_code == 304  # the browser keeps its copy
    assert client.get("/static/vendor/yizhan-map/nothing.js").status_code == 404


# -- packaging -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(built_wheel: Path) -> Path:
    return built_wheel


def test_wheel_carries_templates_scripts_and_styles(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"yizhan/{p.relative_to(PACKAGE).as_posix()}"
        for folder in ("web/templates", "web/static", "maps/static/yizhan-map")
        for p in (PACKAGE / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "yizhan/maps/static/yizhan-map/yizhan-map.js" in expected
    assert "yizhan/web/templates/base.html" in expected
    assert expected <= names, sorted(expected - names)


def test_wheel_carries_the_fetched_vendor_files(wheel: Path) -> None:
    if missing():
        cannot_run("map assets not fetched: run `yizhan assets fetch` (the set-up does it)")
    names = set(zipfile.ZipFile(wheel).namelist())
    for src in PACKAGES:
        base = f"yizhan/maps/static/vendor/{src.dirname}"
        for f in (*src.files, ".yizhan-source"):
            assert f"{base}/{f}" in names, (src.dirname, f)


def test_installed_wheel_reads_its_own_files(wheel: Path, tmp_path: Path) -> None:
    """Unpacked away from the repository, the package finds its files in itself."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = """
import sys
from pathlib import Path
import yizhan
from yizhan.assets import missing, vendor_dir
from yizhan.maps import worker_map
from yizhan.maps.runtime import runtime_dir
from yizhan.web.views import render, texts
root = Path(yizhan.__file__).parent
assert root.is_relative_to(Path(sys.argv[1])), root
assert runtime_dir().is_relative_to(root) and vendor_dir().is_relative_to(root)
assert "var yz = (function" in worker_map(113.6, 34.7, [], assets="cdn").get_root().render()
if not missing():
    html = worker_map(113.6, 34.7, [], assets="inline").get_root().render()
    assert "<script src=" not in html and "var yz = (function" in html
page = render("notfound.html", lang="en", T=texts("en"), nonce="n", switch_href="/")
assert "<style" in page and "</html>" in page.rstrip()[-10:]  # template and CSS from the wheel
print("ok", len(missing()))
"""
    env = {k: v for k, v in os.environ.items() if k != "YIZHAN_MAP_ASSETS_DIR"}
    env["PYTHONPATH"] = str(site)
    r = subprocess.run(
        [sys.executable, "-c", script, str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok")

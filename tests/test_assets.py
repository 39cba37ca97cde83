"""The asset fetcher (``yizhan.assets``) and ``yizhan assets fetch|check|list|path``.

The fetch tests use a fake npm registry on disk (``file://``): no network.
"""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from yizhan import assets
from yizhan.cli import main

REPO = Path(__file__).resolve().parents[1]


def _fake_package(
    tmp_path: Path, content: bytes = b"console.log(1);\n"
) -> tuple[assets.NpmPackage, str]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("package/dist/x.js", content), ("package/evil.js", b"no")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tgz = buf.getvalue()
    reg = tmp_path / "registry"
    (reg / "fakepkg" / "-").mkdir(parents=True)
    (reg / "fakepkg" / "-" / "fakepkg-1.0.0.tgz").write_bytes(tgz)
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
    return assets.NpmPackage("fakepkg", "1.0.0", integrity, ("dist/x.js",), "MIT"), reg.as_uri()


def test_fetch_verifies_extracts_and_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg, registry = _fake_package(tmp_path)
    monkeypatch.setattr(assets, "PACKAGES", (pkg,))
    dest = tmp_path / "vendor"
    assert main(["assets", "check", "--dest", str(dest)]) == 1
    err = capsys.readouterr().err
    assert "missing: npm fakepkg@1.0.0" in err and "run: yizhan assets fetch" in err
    assert main(["assets", "fetch", "--dest", str(dest), "--registry", registry]) == 0
    assert "fetched fakepkg@1.0.0" in capsys.readouterr().err
    assert (dest / "fakepkg-1.0.0" / "dist" / "x.js").read_bytes() == b"console.log(1);\n"
    assert not (dest / "fakepkg-1.0.0" / "evil.js").exists()  # only listed files
    # Second run: nothing to do, nothing printed, no network needed.
    assert main(["assets", "fetch", "--dest", str(dest), "--registry", "http://127.0.0.1:9"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["assets", "check", "--dest", str(dest)]) == 0
    assert assets.missing(dest) == []


def test_fetch_rejects_a_tampered_tarball(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg, registry = _fake_package(tmp_path)
    bad = assets.NpmPackage(
        pkg.name, pkg.version, "sha512-" + "A" * 86 + "==", pkg.files, pkg.license
    )
    monkeypatch.setattr(assets, "PACKAGES", (bad,))
    with pytest.raises(assets.AssetError, match="integrity mismatch"):
        assets.fetch(tmp_path / "vendor", registry=registry)
    assert not (tmp_path / "vendor" / "fakepkg-1.0.0").exists()
    assert [p.name for p in (tmp_path / "vendor").iterdir()] == []  # nothing partial


def test_fetch_offline_gives_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg, _ = _fake_package(tmp_path)
    monkeypatch.setattr(assets, "PACKAGES", (pkg,))
    monkeypatch.setattr(assets.time, "sleep", lambda s: None)
    rc = main(
        ["assets", "fetch", "--dest", str(tmp_path / "v"), "--registry", "http://127.0.0.1:9"]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "yizhan assets: cannot download http://127.0.0.1:9/fakepkg/-/fakepkg-1.0.0.tgz"
    )
    assert "YIZHAN_NPM_REGISTRY" in err and "assets='cdn'" in err
    assert "Traceback" not in err


def test_verify_integrity() -> None:
    data = b"leaflet"
    good = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    assets.verify_integrity(data, good)
    with pytest.raises(assets.AssetError, match="integrity mismatch"):
        assets.verify_integrity(data + b"!", good)
    with pytest.raises(assets.AssetError, match="unsupported integrity"):
        assets.verify_integrity(data, "sha1-abc")


def test_real_pins_are_sha512() -> None:
    for src in assets.PACKAGES:
        if isinstance(src, assets.NpmPackage):
            algo, _, digest = src.integrity.partition("-")
            assert algo == "sha512" and len(base64.b64decode(digest)) == 64, src.name
    keys = [src.key for src in assets.PACKAGES]
    assert len(keys) == len(set(keys))
    assert assets.package("leaflet").dirname == "leaflet-1.9.4"
    with pytest.raises(KeyError):
        assets.package("no-such-package")


def test_vendor_dir_is_package_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YIZHAN_MAP_ASSETS_DIR", raising=False)
    assert assets.vendor_dir() == Path(assets.__file__).resolve().parent / "maps/static/vendor"
    monkeypatch.setenv("YIZHAN_MAP_ASSETS_DIR", str(tmp_path))
    assert assets.vendor_dir() == tmp_path


def test_list_and_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assets", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(assets.PACKAGES)
    assert out[0].startswith("npm leaflet@1.9.4  [BSD-2-Clause]  -> leaflet-1.9.4/")
    assert any(line.startswith("pypi folium==") for line in out)
    assert main(["assets", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(assets.vendor_dir())


def test_module_entry_point() -> None:
    # `python -m yizhan assets ...` is the command line without the console script.
    r = subprocess.run(
        [sys.executable, "-m", "yizhan", "assets", "path"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(assets.vendor_dir())

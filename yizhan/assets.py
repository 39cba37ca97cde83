"""The JavaScript and CSS that maps and pages load, fetched once at set-up so they work offline.

The files come from package registries and are not committed:

* npm tarballs, pinned by version and verified against their ``dist.integrity``
  (sha512) before anything is extracted; only the files listed here are extracted;
* one file from the installed ``folium`` wheel (PyPI), folium's patched
  ``leaflet-heat`` build, verified against the wheel's ``RECORD`` hash.

They land in :func:`vendor_dir` (``yizhan/maps/static/vendor/``, git-ignored, inside the
package so that a wheel built after set-up carries them)::

    yizhan assets fetch     # idempotent; quiet when already present
    yizhan assets check     # exit 1 and list what is missing
    yizhan assets list      # packages, versions and licences

This module is the manifest (:data:`PACKAGES`) and the fetcher. How a map links or embeds
the files is :mod:`yizhan.maps`' business; the API's ``/docs`` and ``/redoc`` pages link
Swagger UI and ReDoc from here too (:mod:`yizhan.api`). It imports nothing from Yizhan but
:mod:`yizhan.errors`, and no third-party package: the download is a few lines of
``urllib`` and ``tarfile`` (npm's own client would need Node.js at set-up).

The mirror of the npm registry can be changed with ``YIZHAN_NPM_REGISTRY``; the
directory with ``YIZHAN_MAP_ASSETS_DIR``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Final

from yizhan.errors import YizhanError

DEFAULT_NPM_REGISTRY: Final = "https://registry.npmjs.org"
#: The command that fetches the files (named in error messages).
FETCH_COMMAND: Final = "yizhan assets fetch"
_STAMP: Final = ".yizhan-source"


class AssetError(YizhanError):
    """Map assets cannot be fetched, verified or found."""


# -- what we ship -----------------------------------------------------------------------


@dataclass(frozen=True)
class NpmPackage:
    """A pinned npm package and the files Yizhan extracts from it."""

    name: str
    version: str
    integrity: str
    files: tuple[str, ...]
    license: str

    @property
    def key(self) -> str:
        """Short name the maps refer to it by (the package name without scope)."""
        return self.name.rsplit("/", 1)[-1]

    @property
    def dirname(self) -> str:
        """Directory under :func:`vendor_dir`; versioned so a new pin never mixes files."""
        return f"{self.key}-{self.version}"

    @property
    def source(self) -> str:
        return f"npm:{self.name}@{self.version} {self.integrity}"

    def tarball_url(self, registry: str) -> str:
        """URL of the tarball on an npm registry (the registry's standard layout)."""
        return f"{registry.rstrip('/')}/{self.name}/-/{self.key}-{self.version}.tgz"

    def cdn_url(self, path: str) -> str:
        """URL of one of the package's files on jsDelivr (used by ``assets="cdn"``)."""
        return f"https://cdn.jsdelivr.net/npm/{self.name}@{self.version}/{path}"


@dataclass(frozen=True)
class WheelFile:
    """A file shipped inside an installed Python distribution (verified against RECORD)."""

    key: str
    dist: str
    path: str
    cdn: str
    license: str

    @property
    def files(self) -> tuple[str, ...]:
        return (Path(self.path).name,)

    @property
    def version(self) -> str:
        return metadata.version(self.dist)

    @property
    def dirname(self) -> str:
        return f"{self.key}-{self.dist}"

    @property
    def source(self) -> str:
        return f"pypi:{self.dist}=={self.version} {self.path}"

    def cdn_url(self, path: str) -> str:
        return self.cdn


Source = NpmPackage | WheelFile

#: Every package the maps, the workers' page and the API's documentation pages use.
#: Versions are those folium 0.20 references where npm has them (awesome-markers: 2.0.2
#: is not on npm, 2.0.5 is its successor there); for the documentation pages, the latest
#: of the major versions FastAPI links (swagger-ui-dist 5, redoc 2).
PACKAGES: Final[tuple[Source, ...]] = (
    NpmPackage(
        "leaflet",
        "1.9.4",
        "sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==",
        (
            "dist/leaflet.js",
            "dist/leaflet.css",
            "dist/images/layers.png",
            "dist/images/layers-2x.png",
            "dist/images/marker-icon.png",
            "dist/images/marker-icon-2x.png",
            "dist/images/marker-shadow.png",
            "LICENSE",
        ),
        "BSD-2-Clause",
    ),
    NpmPackage(
        "jquery",
        "3.7.1",
        "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
        ("dist/jquery.min.js", "LICENSE.txt"),
        "MIT",
    ),
    NpmPackage(
        "bootstrap",
        "5.2.2",
        "sha512-dEtzMTV71n6Fhmbg4fYJzQsw1N29hJKO1js5ackCgIpDcGid2ETMGC6zwSYw09v05Y+oRdQ9loC54zB1La3hHQ==",
        ("dist/js/bootstrap.bundle.min.js", "dist/css/bootstrap.min.css", "LICENSE"),
        "MIT",
    ),
    NpmPackage(
        # Bootstrap 3's glyphicons alone (folium's default CSS still links them).
        "glyphicons-only-bootstrap",
        "1.0.1",
        "sha512-A1zP7yDUC/3+GUFbVTaTw9X2xZWNPLMp0BOsAmkLoWmo1KaNpG1qGdPYo8JnzwGueJ2HQAYvlP9S9OcmcObzHA==",
        ("css/bootstrap.min.css", "fonts/glyphicons-halflings-regular.woff2"),
        "MIT",
    ),
    NpmPackage(
        "@fortawesome/fontawesome-free",
        "6.2.0",
        "sha512-CNR7qRIfCwWHNN7FnKUniva94edPdyQzil/zCwk3v6k4R6rR2Fr8i4s3PM7n/lyfPA6Zfko9z5WDzFxG9SW1uQ==",
        (
            "css/all.min.css",
            "webfonts/fa-brands-400.woff2",
            "webfonts/fa-regular-400.woff2",
            "webfonts/fa-solid-900.woff2",
            "webfonts/fa-v4compatibility.woff2",
            "LICENSE.txt",
        ),
        "MIT (code), OFL-1.1 (fonts), CC-BY-4.0 (icons)",
    ),
    NpmPackage(
        "leaflet.awesome-markers",
        "2.0.5",
        "sha512-Ne/xDjkGyaujwNVVkv2tyXQUV0ZW7gZ0Mo0FuQY4jp2qWrvXi0hwDBvmZyF/8YOvybyMabTMM/mFWCTd1jZIQA==",
        (
            "dist/leaflet.awesome-markers.js",
            "dist/leaflet.awesome-markers.css",
            "dist/images/markers-soft.png",
            "dist/images/markers-soft@2x.png",
            "dist/images/markers-shadow.png",
            "dist/images/markers-shadow@2x.png",
            "LICENSE",
        ),
        "MIT",
    ),
    NpmPackage(
        "leaflet.markercluster",
        "1.5.3",
        "sha512-vPTw/Bndq7eQHjLBVlWpnGeLa3t+3zGiuM7fJwCkiMFq+nmRuG3RI3f7f4N4TDX7T4NpbAXpR2+NTRSEGfCSeA==",
        (
            "dist/leaflet.markercluster.js",
            "dist/MarkerCluster.css",
            "dist/MarkerCluster.Default.css",
            "MIT-LICENCE.txt",
        ),
        "MIT",
    ),
    NpmPackage(
        "leaflet.fullscreen",
        "3.0.0",
        "sha512-81wWSUXz1ZtdneR0v5eJDWXUSx+Zo5J50WXWeydG/UcILfIEAgz/iOjZSi3p00Z9MJ/FC/P5i3CgdYuEAos0yQ==",
        ("Control.FullScreen.js", "Control.FullScreen.css", "icon-fullscreen.svg", "LICENSE"),
        "MIT",
    ),
    NpmPackage(
        "leaflet.locatecontrol",
        "0.66.2",
        "sha512-33xCfRydyjLfh9nGvf4kSTM0tA1EFFgM0z4uj75QkUwIc9cz0vJqWABsyDirLm1GBKeEr8/krcnc10X1YuK7oA==",
        ("dist/L.Control.Locate.min.js", "dist/L.Control.Locate.min.css", "LICENSE"),
        "MIT",
    ),
    NpmPackage(
        "pako",
        "2.1.0",
        "sha512-w+eufiZ1WuJYgPXbV/PO3NCMEc3xqylkKHzp8bxp1uW4qaSNQUkwmLLEc3kKsfz8lpV1F8Ht3U1Cm+9Srog2ug==",
        ("dist/pako_inflate.min.js", "LICENSE"),
        "MIT AND Zlib",
    ),
    # The API's documentation pages (/docs and /redoc, yizhan.api): FastAPI's defaults load
    # them from a CDN, which is slow or unreachable in mainland China and absent offline.
    NpmPackage(
        "swagger-ui-dist",
        "5.35.0",
        "sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==",
        (
            "swagger-ui-bundle.js",
            "swagger-ui.css",
            "favicon-32x32.png",
            "LICENSE",
            "NOTICE",
            "swagger-ui-bundle.js.LICENSE.txt",
        ),
        "Apache-2.0",
    ),
    NpmPackage(
        "redoc",
        "2.5.4",
        "sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ==",
        ("bundles/redoc.standalone.js", "bundles/redoc.standalone.js.LICENSE.txt", "LICENSE"),
        "MIT",
    ),
    WheelFile(
        # Leaflet.heat 0.2.0 with folium's fix for weights (Leaflet/Leaflet.heat#78);
        # the npm release lacks the fix.
        "leaflet-heat",
        "folium",
        "folium/templates/leaflet_heat.min.js",
        "https://cdn.jsdelivr.net/gh/python-visualization/folium@main/folium/templates/leaflet_heat.min.js",
        "BSD-2-Clause (Leaflet.heat), MIT (folium)",
    ),
)


def package(key: str) -> Source:
    """The entry of :data:`PACKAGES` whose :attr:`~NpmPackage.key` is *key*.

    Raises
    ------
    KeyError
        No package has that key.
    """
    for src in PACKAGES:
        if src.key == key:
            return src
    raise KeyError(key)


# -- where it lives ----------------------------------------------------------------------


def vendor_dir() -> Path:
    """Directory of the vendored files: ``yizhan/maps/static/vendor`` in the installed package.

    The API serves it at ``/static/vendor/``. ``YIZHAN_MAP_ASSETS_DIR`` overrides it
    (e.g. for a read-only installation).
    """
    env = os.environ.get("YIZHAN_MAP_ASSETS_DIR")
    if env:
        return Path(env)
    # A directory (served as files), so a real path: Yizhan is never imported from a zip.
    return Path(str(resources.files("yizhan").joinpath("maps", "static", "vendor")))


def installed(src: Source, root: Path) -> bool:
    """Whether *src* is under *root*, from the same pinned source and with all its files."""
    d = root / src.dirname
    try:
        stamp = (d / _STAMP).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return stamp == src.source and all((d / f).is_file() for f in src.files)


def missing(root: Path | None = None) -> list[Source]:
    """Packages that are not (completely) present under *root* (default :func:`vendor_dir`)."""
    r = root or vendor_dir()
    return [p for p in PACKAGES if not installed(p, r)]


# -- fetching -----------------------------------------------------------------------------


def _download(url: str, attempts: int = 3, timeout: float = 60.0) -> bytes:
    last: Exception | None = None
    for i in range(attempts):
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "yizhan-assets"})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                data: bytes = resp.read()
                return data
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                raise AssetError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
            last = exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            last = exc
        if i + 1 < attempts:
            time.sleep(1.0 * (i + 1))
    reason = getattr(last, "reason", last)
    raise AssetError(
        f"cannot download {url}: {reason}. The map assets come from the npm registry at "
        "set-up; check the network, or set YIZHAN_NPM_REGISTRY to a reachable npm mirror, "
        "or build maps with assets='cdn'."
    ) from last


def verify_integrity(data: bytes, integrity: str) -> None:
    """Check *data* against an npm ``dist.integrity`` value (``sha512-<base64>``).

    Raises
    ------
    AssetError
        The digest differs, or the value is not a sha512 SRI string.
    """
    algo, _, expected = integrity.partition("-")
    if algo != "sha512" or not expected:
        raise AssetError(f"unsupported integrity {integrity!r}: expected sha512-<base64>")
    got = base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")
    if got != expected:
        raise AssetError(f"integrity mismatch: expected sha512-{expected}, got sha512-{got}")


def _extract_npm(pkg: NpmPackage, data: bytes, target: Path) -> None:
    wanted = {f"package/{f}": f for f in pkg.files}
    found: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar:
            rel = wanted.get(member.name)
            if rel is None or not member.isfile():
                continue
            fh = tar.extractfile(member)
            if fh is None:  # pragma: no cover - regular files always have data
                continue
            out = target / rel  # rel comes from our own list, never from the archive
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(fh.read())
            found.add(rel)
    lost = sorted(set(pkg.files) - found)
    if lost:
        raise AssetError(f"{pkg.name}@{pkg.version}: not in the tarball: {', '.join(lost)}")


def _copy_wheel_file(src: WheelFile, target: Path) -> None:
    try:
        record = metadata.files(src.dist) or []
    except metadata.PackageNotFoundError as exc:
        raise AssetError(f"{src.dist} is not installed; it provides {src.path}") from exc
    entry = next((f for f in record if str(f).replace("\\", "/") == src.path), None)
    if entry is None:
        raise AssetError(f"{src.dist} {src.version} does not ship {src.path}")
    data = Path(str(entry.locate())).read_bytes()
    if entry.hash is not None:
        digest = hashlib.new(entry.hash.mode, data).digest()
        got = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
        if got != entry.hash.value:
            raise AssetError(f"{src.path} does not match the hash in {src.dist}'s RECORD")
    out = target / Path(src.path).name
    out.write_bytes(data)


def fetch(
    dest: Path | None = None,
    *,
    registry: str | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[str]:
    """Download, verify and extract every package that is missing.

    Idempotent: packages already present (same pinned source, all files there) are
    skipped without any network access.

    Parameters
    ----------
    dest : pathlib.Path, optional
        Target directory (default :func:`vendor_dir`).
    registry : str, optional
        npm registry URL (default ``$YIZHAN_NPM_REGISTRY`` or https://registry.npmjs.org).
    force : bool
        Fetch again even when present.
    log : callable, optional
        Called with one line per package fetched.

    Returns
    -------
    list of str
        What was fetched, e.g. ``leaflet@1.9.4`` (empty when all was present).

    Raises
    ------
    AssetError
        Network failure (with a hint), integrity mismatch, or a file missing from a
        tarball. Nothing partial is left behind.
    """
    root = dest or vendor_dir()
    reg = registry or os.environ.get("YIZHAN_NPM_REGISTRY") or DEFAULT_NPM_REGISTRY
    done: list[str] = []
    for src in PACKAGES:
        if not force and installed(src, root):
            continue
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{src.dirname}.", dir=root))
        try:
            if isinstance(src, NpmPackage):
                data = _download(src.tarball_url(reg))
                try:
                    verify_integrity(data, src.integrity)
                except AssetError as exc:
                    raise AssetError(f"{src.name}@{src.version}: {exc}") from None
                _extract_npm(src, data, tmp)
            else:
                _copy_wheel_file(src, tmp)
            (tmp / _STAMP).write_text(src.source + "\n", encoding="utf-8")
            final = root / src.dirname
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            final.chmod(0o755)  # mkdtemp makes it 0700; a web server must read it
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        name = (
            f"{src.name}@{src.version}"
            if isinstance(src, NpmPackage)
            else f"{src.path} from {src.dist} {src.version}"
        )
        done.append(name)
        if log is not None:
            log(f"fetched {name} -> {root / src.dirname}")
    return done


def describe(src: Source) -> str:
    """One line about *src*: where it comes from, its licence, its directory and files."""
    if isinstance(src, NpmPackage):
        what = f"npm {src.name}@{src.version}"
    else:
        try:
            version = src.version
        except metadata.PackageNotFoundError:  # folium missing: still list the rest
            version = "?"
        what = f"pypi {src.dist}=={version}: {src.path}"
    return f"{what}  [{src.license}]  -> {src.dirname}/  ({', '.join(src.files)})"

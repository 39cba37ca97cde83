"""The maps' JavaScript and CSS, served by Yizhan itself so that maps work offline.

The files come from package registries at set-up time and are not committed:

* npm tarballs, pinned by version and verified against their ``dist.integrity``
  (sha512) before anything is extracted; only the files listed here are extracted;
* one file from the installed ``folium`` wheel (PyPI), folium's patched
  ``leaflet-heat`` build, verified against the wheel's ``RECORD`` hash.

They land in :func:`vendor_dir` (``yizhan/maps/static/vendor/``, git-ignored)::

    python -m yizhan.maps.assets fetch     # idempotent; quiet when already present
    python -m yizhan.maps.assets check     # exit 1 and list what is missing
    python -m yizhan.maps.assets list      # packages, versions and licences

Maps built with ``assets="local"`` reference the files under a base URL (the API mounts
:func:`vendor_dir` at ``/static/vendor/``); ``assets="inline"`` embeds them in the HTML
(a standalone file that opens offline); ``assets="cdn"`` keeps public CDN URLs.

The mirror of the npm registry can be changed with ``YIZHAN_NPM_REGISTRY``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal

from yizhan.errors import InvalidInputError, YizhanError

AssetMode = Literal["local", "inline", "cdn"]
ASSET_MODES: Final[tuple[AssetMode, ...]] = ("local", "inline", "cdn")
DEFAULT_BASE_URL: Final = "/static/vendor/"
DEFAULT_NPM_REGISTRY: Final = "https://registry.npmjs.org"
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
        """Short name used in :class:`AssetRef` (the package name without scope)."""
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
        from importlib.metadata import version

        return version(self.dist)

    @property
    def dirname(self) -> str:
        return f"{self.key}-{self.dist}"

    @property
    def source(self) -> str:
        return f"pypi:{self.dist}=={self.version} {self.path}"

    def cdn_url(self, path: str) -> str:
        return self.cdn


Source = NpmPackage | WheelFile

#: Every package the maps use. Versions are those folium 0.20 references where npm has
#: them (awesome-markers: 2.0.2 is not on npm, 2.0.5 is its successor there).
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

_BY_KEY: Final[dict[str, Source]] = {p.key: p for p in PACKAGES}


@dataclass(frozen=True)
class AssetRef:
    """One file of one package: ``AssetRef("leaflet", "dist/leaflet.js")``."""

    package: str
    path: str

    @property
    def source(self) -> Source:
        return _BY_KEY[self.package]

    @property
    def kind(self) -> Literal["js", "css"]:
        return "css" if self.path.endswith(".css") else "js"

    def cdn_url(self) -> str:
        """Public CDN URL of the file."""
        return self.source.cdn_url(self.path)

    def local_url(self, base_url: str = DEFAULT_BASE_URL) -> str:
        """URL of the file under *base_url* (where :func:`vendor_dir` is served)."""
        return f"{normalize_base_url(base_url)}{self.source.dirname}/{self.path}"

    def file(self, root: Path | None = None) -> Path:
        """Where the file is (or will be) on disk."""
        return (root or vendor_dir()) / self.source.dirname / self.path


#: folium's default and plugin URLs (by pattern) -> local copies. ``None`` marks a file
#: deliberately left out in ``local``/``inline`` mode, with the reason beside it.
_RULES: Final[tuple[tuple[re.Pattern[str], AssetRef | None], ...]] = tuple(
    (re.compile(pattern), ref)
    for pattern, ref in (
        (r"/leaflet@1\.[\d.]+/dist/leaflet\.js$", AssetRef("leaflet", "dist/leaflet.js")),
        (r"/leaflet@1\.[\d.]+/dist/leaflet\.css$", AssetRef("leaflet", "dist/leaflet.css")),
        (
            r"jquery[-@/]3\.[\d.]+(/dist)?/jquery(-3\.[\d.]+)?\.min\.js$",
            AssetRef("jquery", "dist/jquery.min.js"),
        ),
        (r"code\.jquery\.com/jquery-3\.[\d.]+\.min\.js$", AssetRef("jquery", "dist/jquery.min.js")),
        (
            r"/bootstrap@5\.[\d.]+/dist/js/bootstrap\.bundle\.min\.js$",
            AssetRef("bootstrap", "dist/js/bootstrap.bundle.min.js"),
        ),
        (
            r"/bootstrap@5\.[\d.]+/dist/css/bootstrap\.min\.css$",
            AssetRef("bootstrap", "dist/css/bootstrap.min.css"),
        ),
        (
            r"/bootstrap/3\.[\d.]+/css/bootstrap-glyphicons\.css$",
            AssetRef("glyphicons-only-bootstrap", "css/bootstrap.min.css"),
        ),
        (
            r"/@fortawesome/fontawesome-free@6\.[\d.]+/css/all\.min\.css$",
            AssetRef("fontawesome-free", "css/all.min.css"),
        ),
        (
            r"[Ll]eaflet\.awesome-markers/2\.[\d.]+/(dist/)?leaflet\.awesome-markers\.js$",
            AssetRef("leaflet.awesome-markers", "dist/leaflet.awesome-markers.js"),
        ),
        (
            r"[Ll]eaflet\.awesome-markers/2\.[\d.]+/(dist/)?leaflet\.awesome-markers\.css$",
            AssetRef("leaflet.awesome-markers", "dist/leaflet.awesome-markers.css"),
        ),
        # Only used by folium.Icon(angle=...), which Yizhan does not use; the file is
        # in folium's git repository only, on no package registry.
        (r"/leaflet\.awesome\.rotate(\.min)?\.css$", None),
        (
            r"markercluster[@/]1\.[\d.]+/(dist/)?leaflet\.markercluster\.js$",
            AssetRef("leaflet.markercluster", "dist/leaflet.markercluster.js"),
        ),
        (
            r"markercluster[@/]1\.[\d.]+/(dist/)?MarkerCluster\.css$",
            AssetRef("leaflet.markercluster", "dist/MarkerCluster.css"),
        ),
        (
            r"markercluster[@/]1\.[\d.]+/(dist/)?MarkerCluster\.Default\.css$",
            AssetRef("leaflet.markercluster", "dist/MarkerCluster.Default.css"),
        ),
        (r"/leaflet_heat\.min\.js$", AssetRef("leaflet-heat", "leaflet_heat.min.js")),
        (
            r"/leaflet\.fullscreen@3\.[\d.]+/Control\.FullScreen(\.min)?\.js$",
            AssetRef("leaflet.fullscreen", "Control.FullScreen.js"),
        ),
        (
            r"/leaflet\.fullscreen@3\.[\d.]+/Control\.FullScreen\.css$",
            AssetRef("leaflet.fullscreen", "Control.FullScreen.css"),
        ),
        (
            r"locatecontrol[@/]0\.66\.2/(dist/)?L\.Control\.Locate\.min\.js$",
            AssetRef("leaflet.locatecontrol", "dist/L.Control.Locate.min.js"),
        ),
        (
            r"locatecontrol[@/]0\.66\.2/(dist/)?L\.Control\.Locate\.min\.css$",
            AssetRef("leaflet.locatecontrol", "dist/L.Control.Locate.min.css"),
        ),
        (
            r"/pako@2\.[\d.]+/dist/pako_inflate\.min\.js$",
            AssetRef("pako", "dist/pako_inflate.min.js"),
        ),
    )
)


def resolve_url(url: str) -> AssetRef | None:
    """The local copy of a folium/CDN asset URL.

    Returns
    -------
    AssetRef or None
        ``None`` when the file is deliberately not shipped (see the rules).

    Raises
    ------
    AssetError
        No rule knows the URL: the map would need the internet for it.
    """
    for pattern, ref in _RULES:
        if pattern.search(url):
            return ref
    raise AssetError(
        f"no offline copy of {url}: add its package to yizhan.maps.assets.PACKAGES "
        "(or build the map with assets='cdn')"
    )


# -- where it lives ----------------------------------------------------------------------


def static_dir() -> Path:
    """Directory of the maps' static files (``yizhan/maps/static``).

    The API can mount it at ``/static``; the vendored assets are its ``vendor/``
    sub-directory (see :func:`vendor_dir`).
    """
    return Path(__file__).resolve().parent / "static"


def vendor_dir() -> Path:
    """Directory of the vendored JS/CSS; mount it at ``/static/vendor/``.

    ``YIZHAN_MAP_ASSETS_DIR`` overrides it (e.g. for a read-only installation).
    """
    env = os.environ.get("YIZHAN_MAP_ASSETS_DIR")
    return Path(env) if env else static_dir() / "vendor"


def check_mode(assets: object) -> AssetMode:
    """Validate an ``assets`` argument.

    Raises
    ------
    InvalidInputError
        ``assets: Expected one of local, inline, cdn, got 'x'``.
    """
    for mode in ASSET_MODES:
        if assets == mode:
            return mode
    raise InvalidInputError("assets", f"Expected one of {', '.join(ASSET_MODES)}, got {assets!r}")


def normalize_base_url(base_url: str) -> str:
    """*base_url* with exactly one trailing slash."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise InvalidInputError("asset_base_url", f"Expected a URL or path, got {base_url!r}")
    return base_url.rstrip("/") + "/"


def _installed(src: Source, root: Path) -> bool:
    d = root / src.dirname
    try:
        stamp = (d / _STAMP).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return stamp == src.source and all((d / f).is_file() for f in src.files)


def missing(root: Path | None = None) -> list[Source]:
    """Packages that are not (completely) present under *root* (default :func:`vendor_dir`)."""
    r = root or vendor_dir()
    return [p for p in PACKAGES if not _installed(p, r)]


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
    from importlib.metadata import PackageNotFoundError, files

    try:
        record = files(src.dist) or []
    except PackageNotFoundError as exc:
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
        if not force and _installed(src, root):
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


# -- embedding (assets="inline") ------------------------------------------------------------

_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
_SOURCEMAP = re.compile(
    r"^[ \t]*(//[#@] sourceMappingURL=\S*|/\*# sourceMappingURL=[^*]*\*/)[ \t]*$", re.M
)
_MIME = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
}
# Fallback font formats for old browsers: never requested by a browser that reads woff2.
_FALLBACK_FONTS = (".eot", ".ttf", ".woff", ".svg#")


def _require(ref: AssetRef, root: Path | None) -> Path:
    path = ref.file(root)
    if not path.is_file():
        raise AssetError(
            f"map asset {path} is missing: run `python -m yizhan.maps.assets fetch` "
            "(or build the map with assets='local' or 'cdn')"
        )
    return path


@lru_cache(maxsize=64)
def _inline_cached(path: Path, kind: str, mtime_ns: int) -> str:
    text = path.read_text(encoding="utf-8")
    text = _SOURCEMAP.sub("", text)
    if kind == "js":
        # Inside <script>, "</script" would end the element early.
        return re.sub(r"</(script)", r"<\\/\1", text, flags=re.I)

    embedded_fonts: set[Path] = set()

    def data_uri(m: re.Match[str]) -> str:
        target = m.group(2).strip()
        if target.startswith(("data:", "#", "http:", "https:", "//")):
            return m.group(0)
        if any(marker in target for marker in _FALLBACK_FONTS) and ".woff2" not in target:
            return "url(data:,)"
        file = (path.parent / target.split("?", 1)[0].split("#", 1)[0]).resolve()
        if file.suffix == ".woff2":
            # Font Awesome declares each font three times (v6 name plus v4/v5 aliases);
            # embed it once: the aliases stay empty in a standalone file.
            if file in embedded_fonts:
                return "url(data:,)"
            embedded_fonts.add(file)
        mime = _MIME.get(file.suffix)
        if mime is None or not file.is_file():
            raise AssetError(f"{path.name} references {target}, which is not vendored")
        payload = base64.b64encode(file.read_bytes()).decode("ascii")
        return f'url("data:{mime};base64,{payload}")'

    text = _CSS_URL.sub(data_uri, text)
    return re.sub(r"</(style)", r"<\\/\1", text, flags=re.I)


def inline_text(ref: AssetRef, root: Path | None = None) -> str:
    """The file's text ready to embed in ``<script>``/``<style>``.

    CSS ``url(...)`` references become ``data:`` URIs, so the page needs no other file.

    Raises
    ------
    AssetError
        The file (or one it references) has not been fetched.
    """
    path = _require(ref, root)
    return _inline_cached(path, ref.kind, path.stat().st_mtime_ns)


# -- applying a mode to a rendered folium figure -------------------------------------------------


def localize_header(figure: Any, mode: AssetMode, base_url: str = DEFAULT_BASE_URL) -> None:
    """Point every JS/CSS link in a rendered folium figure's header at Yizhan's copies.

    Called after the map rendered (so folium and its plugins have added their links);
    links are replaced in place, keeping their order and names, and a file linked twice
    under different names is emitted once. Nothing global is changed.

    Parameters
    ----------
    figure : branca.element.Figure
        The root of the map.
    mode : {"local", "inline", "cdn"}
        ``cdn`` leaves the links as they are.
    base_url : str
        Where :func:`vendor_dir` is served (``local`` only).

    Raises
    ------
    AssetError
        A link has no offline copy, or (``inline``) a file has not been fetched.
    """
    if mode == "cdn":
        return
    from branca.element import CssLink, JavascriptLink

    header = figure.header
    seen: set[AssetRef] = set()
    for name, child in list(header._children.items()):
        done = getattr(child, "yz_asset", None)
        if isinstance(done, AssetRef):  # localised on an earlier render and kept
            seen.add(done)
            continue
        if not isinstance(child, JavascriptLink | CssLink):
            continue
        ref = resolve_url(str(child.url))
        if ref is None or ref in seen:
            new = raw_element("")
        else:
            seen.add(ref)
            new = raw_element(asset_tag(ref, mode, base_url), ref)
        new._parent = header
        header._children[name] = new


def asset_tag(ref: AssetRef, mode: AssetMode, base_url: str = DEFAULT_BASE_URL) -> str:
    """The ``<script>``/``<link>``/``<style>`` element for one asset in *mode*."""
    from html import escape

    if mode == "inline":
        body = inline_text(ref)
        return f"<script>{body}</script>" if ref.kind == "js" else f"<style>{body}</style>"
    url = escape(ref.local_url(base_url) if mode == "local" else ref.cdn_url(), quote=True)
    if ref.kind == "js":
        return f'<script src="{url}"></script>'
    return f'<link rel="stylesheet" href="{url}"/>'


@lru_cache(maxsize=1)
def _raw_class() -> type:
    # branca is imported here, not at module level, so that the CLI stays light.
    from branca.element import Element

    class RawElement(Element):
        """An element rendered verbatim, never through Jinja."""

        def __init__(self, text: str, asset: AssetRef | None = None) -> None:
            super().__init__()
            self._text = text
            self.yz_asset = asset

        def render(self, **kwargs: Any) -> str:
            return self._text

    return RawElement


def raw_element(text: str, asset: AssetRef | None = None) -> Any:
    """A branca element whose output is *text* exactly.

    folium passes the output of every macro through Jinja a second time, so text holding
    ``{{`` would be evaluated; this element is never templated.
    """
    return _raw_class()(text, asset)


# -- command line -------------------------------------------------------------------------------


def _describe(src: Source) -> str:
    if isinstance(src, NpmPackage):
        what = f"npm {src.name}@{src.version}"
    else:
        try:
            version = src.version
        except Exception:  # folium missing: still list the rest
            version = "?"
        what = f"pypi {src.dist}=={version}: {src.path}"
    return f"{what}  [{src.license}]  -> {src.dirname}/  ({', '.join(src.files)})"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m yizhan.maps.assets {fetch,check,list,path}``."""
    parser = argparse.ArgumentParser(
        prog="python -m yizhan.maps.assets",
        description="Fetch the maps' JavaScript/CSS from the npm registry so maps work offline.",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_fetch = sub.add_parser("fetch", help="download what is missing (quiet when all present)")
    p_fetch.add_argument("--dest", type=Path, help="target directory (default: %(default)s)")
    p_fetch.add_argument(
        "--registry", help="npm registry URL (default: $YIZHAN_NPM_REGISTRY or npmjs)"
    )
    p_fetch.add_argument("--force", action="store_true", help="fetch again even when present")
    p_check = sub.add_parser("check", help="exit 1 if anything is missing")
    p_check.add_argument("--dest", type=Path)
    sub.add_parser("list", help="packages, versions and licences")
    sub.add_parser("path", help="print the vendor directory")
    args = parser.parse_args(argv)

    def err(msg: str) -> None:
        print(msg, file=sys.stderr)

    if args.cmd == "fetch":
        try:
            fetch(args.dest, registry=args.registry, force=args.force, log=err)
        except AssetError as exc:
            err(f"error: {exc}")
            return 1
        return 0
    if args.cmd == "check":
        lost = missing(args.dest)
        for src in lost:
            err(f"missing: {_describe(src)}")
        if lost:
            err("run: python -m yizhan.maps.assets fetch")
        return 1 if lost else 0
    if args.cmd == "list":
        for src in PACKAGES:
            print(_describe(src))
        return 0
    print(vendor_dir())
    return 0


def iter_refs() -> Iterable[AssetRef]:
    """Every CSS/JS file the rules map to (for tests and ``check``)."""
    seen: set[AssetRef] = set()
    for _, ref in _RULES:
        if ref is not None and ref not in seen:
            seen.add(ref)
            yield ref


if __name__ == "__main__":
    raise SystemExit(main())

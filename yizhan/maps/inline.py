"""Embedding JavaScript and CSS files in a page (``assets="inline"``).

A standalone map carries every file it needs: scripts go inside ``<script>``, style
sheets inside ``<style>`` with the images and fonts they reference as ``data:`` URIs.
The text is read once per file version (path and modification time).
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from yizhan.assets import FETCH_COMMAND, AssetError, missing
from yizhan.maps.asset_refs import AssetRef

Kind = Literal["js", "css"]

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


def script_text(text: str) -> str:
    """JavaScript *text* ready to sit inside ``<script>``.

    Source-map comments are dropped (the maps are not shipped) and ``</script`` is
    written ``<\\/script`` (the same string to JavaScript), which would otherwise end the
    element early.
    """
    return re.sub(r"</(script)", r"<\\/\1", _SOURCEMAP.sub("", text), flags=re.I)


def style_text(text: str, folder: Path, name: str = "CSS") -> str:
    """CSS *text* ready to sit inside ``<style>``.

    Relative ``url(...)`` references (resolved against *folder*) become ``data:`` URIs;
    fallback font formats (EOT, TTF, WOFF) become empty, as browsers that read the WOFF2
    never request them; ``</style`` is escaped.

    Raises
    ------
    AssetError
        A referenced file is not there (or of a type not embedded), naming *name*.
    """
    embedded_fonts: set[Path] = set()

    def data_uri(m: re.Match[str]) -> str:
        target = m.group(2).strip()
        if target.startswith(("data:", "#", "http:", "https:", "//")):
            return m.group(0)
        if any(marker in target for marker in _FALLBACK_FONTS) and ".woff2" not in target:
            return "url(data:,)"
        file = (folder / target.split("?", 1)[0].split("#", 1)[0]).resolve()
        if file.suffix == ".woff2":
            # Font Awesome declares each font three times (v6 name plus v4/v5 aliases);
            # embed it once: the aliases stay empty in a standalone file.
            if file in embedded_fonts:
                return "url(data:,)"
            embedded_fonts.add(file)
        mime = _MIME.get(file.suffix)
        if mime is None or not file.is_file():
            raise AssetError(f"{name} references {target}, which is not vendored")
        payload = base64.b64encode(file.read_bytes()).decode("ascii")
        return f'url("data:{mime};base64,{payload}")'

    text = _CSS_URL.sub(data_uri, _SOURCEMAP.sub("", text))
    return re.sub(r"</(style)", r"<\\/\1", text, flags=re.I)


@lru_cache(maxsize=64)
def _embedded(path: Path, kind: Kind, mtime_ns: int) -> str:
    text = path.read_text(encoding="utf-8")
    return script_text(text) if kind == "js" else style_text(text, path.parent, path.name)


def embed_file(path: Path, kind: Kind) -> str:
    """The text of the file at *path* ready for ``<script>`` (``js``) or ``<style>`` (``css``)."""
    return _embedded(path, kind, path.stat().st_mtime_ns)


def inline_text(ref: AssetRef, root: Path | None = None) -> str:
    """The vendored file *ref* (under *root*, default the vendor dir) ready to embed.

    Raises
    ------
    AssetError
        The file (or one it references) has not been fetched.
    """
    path = ref.file(root)
    if not path.is_file():
        raise AssetError(
            f"map asset {path} is missing: run `{FETCH_COMMAND}` "
            "(or build the map with assets='local' or 'cdn')"
        )
    return embed_file(path, ref.kind)


def require_fetched() -> None:
    """Check that every vendored package is there before an inline map is built.

    Raises
    ------
    AssetError
        Naming the missing packages and the command that fetches them.
    """
    lost = missing()
    if lost:
        names = ", ".join(getattr(p, "name", p.key) for p in lost)
        raise AssetError(
            f"assets='inline' embeds the vendored JS/CSS, which are missing ({names}): "
            f"run `{FETCH_COMMAND}`"
        )

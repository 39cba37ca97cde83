"""``yizhan poster ID``: a printable A4 poster (HTML) of a station or cooling bus.

The poster has the station's name, what it offers, its hours and a QR code (segno) that
opens the station's page, ``<base-url>/s/<id>``, on the server workers reach. It is the
page ``GET /s/{id}/poster`` serves; print it from a browser (A4, margins set by the page).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from yizhan.errors import InvalidInputError
from yizhan.maps.i18n import LANGS, check_lang
from yizhan.settings import Settings
from yizhan.stations.registry import load_registry
from yizhan.web.views import poster_page, public_base_url


def add_parsers(sub: Any) -> None:
    """Register the ``poster`` sub-command."""
    p = sub.add_parser(
        "poster",
        help="a printable A4 poster of a station, with a QR code to its page",
        description="Write the A4 poster (print-ready HTML) of a station or cooling bus: "
        "name, amenities, hours and a QR code opening BASE_URL/s/ID.",
    )
    p.add_argument("id", metavar="ID", help="the station's or cooling bus's id")
    p.add_argument(
        "--registry",
        default=None,
        help="registry GeoJSON (default: YIZHAN_REGISTRY or the bundled one)",
    )
    p.add_argument(
        "--base-url",
        default=None,
        help="public address of the Yizhan server the QR code opens, e.g. "
        "https://yizhan.example.org (default: YIZHAN_PUBLIC_URL, else "
        "http://YIZHAN_HOST:YIZHAN_PORT with a warning on the poster)",
    )
    p.add_argument("--lang", choices=LANGS, default="zh", help="poster language (default zh)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the HTML here (default: stdout)")
    p.set_defaults(func=cmd_poster)


def check_base_url(url: str) -> str:
    """*url* without a trailing slash, if it is an absolute http(s) address.

    Raises
    ------
    InvalidInputError
        ``--base-url: Expected an http:// or https:// address, got ...``.
    """
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if scheme.lower() not in ("http", "https") or not sep or not rest.strip("/"):
        raise InvalidInputError(
            "--base-url", f"Expected an http:// or https:// address, got {url!r}"
        )
    return text.rstrip("/")


def cmd_poster(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.output and Path(args.output).suffix.lower() == ".pdf":
        raise InvalidInputError(
            "--output",
            "the poster is written as HTML; open it in a browser and print it to PDF "
            "(or: chromium --headless --print-to-pdf=poster.pdf poster.html)",
        )
    configured = True
    if args.base_url is None:
        base_url, configured = public_base_url(settings)
        if not configured:
            print(
                f"yizhan poster: the QR code opens {base_url}/s/{args.id}; set "
                "YIZHAN_PUBLIC_URL or pass --base-url with the address workers' phones reach",
                file=sys.stderr,
            )
    else:
        base_url = check_base_url(args.base_url)
    registry = load_registry(
        args.registry or settings.registry,
        timezone=settings.timezone,
        holiday_country=settings.holiday_country,
    )
    html = poster_page(registry, args.id, base_url, check_lang(args.lang), configured=configured)
    if args.output:
        Path(args.output).write_text(html, encoding="utf-8")
        print(f"yizhan poster: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(html)
    return 0

"""Request limits: a cap on the size of request bodies (HTTP 413)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """Refuse request bodies larger than *max_bytes* with 413, before they are parsed.

    *larger* lists ``(path pattern, bytes)``: requests to a path matching a pattern may
    carry that many bytes instead (photo uploads).

    A declared ``Content-Length`` over the cap is refused at once; a body sent without
    one (chunked) is counted as it arrives and refused when it passes the cap: the 413 is
    sent then, the application sees the client disconnect, and its own answer is dropped.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: Sequence[tuple[str, int]] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = [(re.compile(pattern), n) for pattern, n in larger]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = next((n for rx, n in self.larger if rx.match(path)), self.max_bytes)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _too_large(send, limit, declared)
                    return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Answer now; the app sees the client gone and whatever it sends is dropped.
                    refused = True
                    await _too_large(send, limit, None)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)


async def _too_large(send: Send, limit: int, declared: int | None) -> None:
    got = f"{declared}" if declared is not None else "more"
    body = f'{{"detail":"request body: Expected at most {limit} bytes, got {got}"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

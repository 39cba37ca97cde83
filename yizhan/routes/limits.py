"""Request limits: the size of request bodies (413), the time to send one (408), and what a
JSON body may contain (422: nesting depth, non-finite or out-of-range numbers, lone
surrogates).

The JSON checks are hand-written rather than left to the framework because FastAPI parses
bodies with the standard library, which accepts ``NaN``, ``Infinity``, ``1e400``, integers
of any size, lone surrogates and nesting up to the recursion limit: values the registry
cannot write back as JSON (they became ``null`` or a 500). :class:`JSONBodyGuard` parses
each JSON body once more with hooks that mark those values and refuses the body with a 422
naming the member, before the application sees it.
"""

from __future__ import annotations

import asyncio
import email.message
import json
import re
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Integers orjson can write back (it stores the registry): signed or unsigned 64 bits.
INT_MIN, INT_MAX = -(2**63), 2**64 - 1


class BodySizeLimit:
    """Refuse request bodies larger than *max_bytes* with 413, before they are parsed.

    *larger* lists ``(path pattern, bytes)``: requests to a path matching a pattern may
    carry that many bytes instead (photo uploads).

    A declared ``Content-Length`` over the cap is refused at once; a body sent without
    one (chunked) is counted as it arrives and refused when it passes the cap: the 413 is
    sent then, the application sees the client disconnect, and its own answer is dropped.
    With *body_timeout_s*, a body not complete that many seconds after the application
    first asked for it is refused the same way with 408 (a client trickling its body
    would otherwise hold a request open for as long as it likes).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        body_timeout_s: float | None = None,
        larger: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s
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
        complete = False
        deadline: float | None = None
        timeout_s = self.body_timeout_s

        async def counted() -> Message:
            nonlocal seen, refused, complete, deadline
            if refused:
                return {"type": "http.disconnect"}
            if complete or timeout_s is None:
                message = await receive()
            else:
                loop = asyncio.get_running_loop()
                if deadline is None:
                    deadline = loop.time() + timeout_s
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    refused = True
                    await _refuse(send, 408, f"request body: not received within {timeout_s:g} s")
                    return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Answer now; the app sees the client gone and whatever it sends is dropped.
                    refused = True
                    await _too_large(send, limit, None)
                    return {"type": "http.disconnect"}
                if not message.get("more_body", False):
                    complete = True
            return message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)


async def _too_large(send: Send, limit: int, declared: int | None) -> None:
    got = f"{declared}" if declared is not None else "more"
    await _refuse(send, 413, f"request body: Expected at most {limit} bytes, got {got}")


async def _refuse(send: Send, status: int, detail: str | list[dict[str, Any]]) -> None:
    """Answer *status* with a JSON ``detail`` and close the connection."""
    body = orjson.dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- JSON bodies -----------------------------------------------------------------------------


class _Bad:
    """A value the JSON parser met that Yizhan refuses, and why."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _constant(text: str) -> _Bad:
    return _Bad(f"Expected a finite number, got {text}")


def _float(text: str) -> float | _Bad:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return _Bad(f"Expected a finite number, got {text[:40]}")
    return value


def _int(text: str) -> int | _Bad:
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        return _Bad(f"Expected an integer of at most 64 bits, got {text[:40]}")
    return value


def _surrogate(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"Expected valid Unicode text, got a lone surrogate U+{ord(text[exc.start]):04X}"
    return None


def json_problem(body: bytes, max_depth: int) -> tuple[list[str | int], str] | None:
    """What a JSON *body* contains that Yizhan refuses: ``(path, message)`` of the first
    such member, or ``None`` (also for a body that is not JSON at all: the framework
    answers that one).

    Parameters
    ----------
    body : bytes
        The request body.
    max_depth : int
        Deepest nesting allowed (the top-level object or array is level 1).
    """
    try:
        doc = json.loads(body, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        return [], f"Expected JSON nested at most {max_depth} levels deep, got deeper"
    except ValueError:  # not JSON (or not UTF-8): the framework's own 422
        return None
    stack: list[tuple[Any, list[str | int], int]] = [(doc, [], 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, _Bad):
            return path, value.message
        if isinstance(value, str):
            problem = _surrogate(value)
            if problem is not None:
                return path, problem
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth + 1 > max_depth:
            return path, f"Expected JSON nested at most {max_depth} levels deep, got deeper"
        if isinstance(value, dict):
            # Pushed in reverse: the first offending member in document order is named.
            for k, v in reversed(value.items()):
                problem = _surrogate(k)
                if problem is not None:
                    return [*path, k.encode("utf-8", "replace").decode()], problem + " in a name"
                stack.append((v, [*path, k], depth + 1))
        else:
            for i in range(len(value) - 1, -1, -1):
                stack.append((value[i], [*path, i], depth + 1))
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            message = email.message.Message()
            message["content-type"] = value.decode("latin-1")
            sub = message.get_content_subtype()
            return message.get_content_maintype() == "application" and (
                sub == "json" or sub.endswith("+json")
            )
    return False


class JSONBodyGuard:
    """Refuse JSON request bodies that nest deeper than *max_depth* or hold numbers or text
    that cannot be stored as JSON, with a 422 naming the member (see :func:`json_problem`).

    Only bodies the framework would parse as JSON are looked at (``application/json`` and
    ``application/*+json``); the body is read here (its size is already capped by
    :class:`BodySizeLimit`, outside this one) and handed on unchanged.
    """

    def __init__(self, app: ASGIApp, max_depth: int) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or not _is_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # gone (or refused by BodySizeLimit)
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = json_problem(body, self.max_depth) if body else None
        if problem is not None:
            path, msg = problem
            await _refuse(
                send,
                422,
                [{"type": "value_error", "loc": ["body", *path], "msg": msg, "input": None}],
            )
            return
        whole: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([whole], receive), send)


def _replay(first: list[Message], receive: Receive) -> Receive:
    """*receive* that first returns the messages already read."""
    pending = list(first)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay

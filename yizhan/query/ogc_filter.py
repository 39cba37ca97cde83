"""CQL2 filters (OGC API – Features Part 3) evaluated on columns, vectorised.

Parsing is pygeofilter's (``cql2-text`` and ``cql2-json``): this module walks its AST and
evaluates every node over whole columns at once, returning a boolean mask over the
features. Comparisons follow CQL2's three-valued logic: a comparison with a missing
(``NULL``) property is *unknown*, ``NOT unknown`` is unknown, and only features for which
the whole filter is *true* are kept. Each node gives a pair of masks ``(true, known)``.

Supported: ``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``, ``AND``, ``OR``, ``NOT``, ``IN``,
``LIKE`` (``%`` any text, ``_`` one character, ``\\`` escapes), ``BETWEEN``, ``IS NULL``,
``S_INTERSECTS``, ``S_DISJOINT``, ``S_WITHIN``, ``S_CONTAINS`` and ``S_EQUALS`` with a
point, a bounding box (``BBOX(...)``) or any WKT/GeoJSON geometry. pygeofilter 0.4 parses
no CQL2 array functions; the array nodes are evaluated here for the property filters
(``?amenities=toilet``: the list contains it), which build them directly.
Dates and timestamps (``DATE('…')``, ``TIMESTAMP('…')``) compare with date-time
properties.

Two corrections to pygeofilter 0.4, made here: CQL2-JSON ``{"bbox": [minx, miny, maxx,
maxy]}`` is read in CQL2's order (pygeofilter takes it as ``x1, x2, y1, y2``), and
``LIKE``'s single-character wildcard is CQL2's ``_`` (pygeofilter reports ``.``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import shapely
from numpy.typing import NDArray
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text

from yizhan.errors import InvalidInputError

BoolArray = NDArray[np.bool_]
Masks = tuple[BoolArray, BoolArray]  # (true, known)

#: Filter languages of ``filter-lang``.
FILTER_LANGS = ("cql2-text", "cql2-json")
#: The only ``filter-crs`` accepted: WGS-84 longitude/latitude.
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@dataclass(frozen=True)
class Queryable:
    """A property a filter may name: its JSON type (``string``, ``number``, ``integer``,
    ``boolean``, ``date-time``, ``array``) and a description."""

    type: str
    description: str = ""

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the property (as ``/queryables`` lists it)."""
        if self.type == "date-time":
            return {"type": "string", "format": "date-time", "description": self.description}
        if self.type == "array":
            return {"type": "array", "items": {"type": "string"}, "description": self.description}
        return {"type": self.type, "description": self.description}


class Table(Protocol):
    """What a filter is evaluated on: named columns and the features' geometries."""

    def __len__(self) -> int: ...

    def column(self, name: str) -> NDArray[Any]:
        """The values of property *name* (``None`` where missing): an object array, or a
        float array (``nan`` where missing) for numbers and date-times (POSIX seconds)."""
        ...

    def spatial(self, op: str, geom: Any) -> BoolArray:
        """``shapely.<op>(feature geometry, geom)`` for every feature."""
        ...


def parse_filter(text: str, lang: str | None) -> ast.Node:
    """Parse a ``filter`` parameter (or body) in ``cql2-text`` or ``cql2-json``.

    Raises
    ------
    InvalidInputError
        Naming ``filter`` (the parser's message) or ``filter-lang``.
    """
    lang = lang or "cql2-text"
    if lang not in FILTER_LANGS:
        raise InvalidInputError(
            "filter-lang", f"Expected one of {', '.join(FILTER_LANGS)}, got {lang!r}"
        )
    try:
        if lang == "cql2-json":
            doc = orjson.loads(text)
            node: Any = parse_cql2_json(_fix_json_bbox(doc))
        else:
            node = parse_cql2_text(text)
    except InvalidInputError:
        raise
    except Exception as exc:  # lark and pygeofilter raise many kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError("filter", f"not valid {lang}: {first}") from None
    if not isinstance(node, ast.Node):
        raise InvalidInputError("filter", f"Expected a condition, got {text!r:.80}")
    return node


def _fix_json_bbox(doc: Any) -> Any:
    """``{"bbox": [...]}`` → a GeoJSON Polygon (pygeofilter misreads the bbox order)."""
    if isinstance(doc, dict):
        if set(doc) == {"bbox"} and isinstance(doc["bbox"], list):
            b = doc["bbox"]
            if len(b) not in (4, 6) or not all(isinstance(v, int | float) for v in b):
                raise InvalidInputError("filter", f"Expected a bbox of 4 or 6 numbers, got {b!r}")
            x1, y1, x2, y2 = (b[0], b[1], b[2], b[3]) if len(b) == 4 else (b[0], b[1], b[3], b[4])
            return {"type": "Polygon", "coordinates": [_ring(x1, y1, x2, y2)]}
        return {k: _fix_json_bbox(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_fix_json_bbox(v) for v in doc]
    return doc


def _ring(x1: float, y1: float, x2: float, y2: float) -> list[list[float]]:
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]


def properties_of(node: Any) -> set[str]:
    """Every property name a parsed filter refers to."""
    found: set[str] = set()

    def walk(n: Any) -> None:
        if isinstance(n, ast.Attribute):
            found.add(str(n.name))
        elif isinstance(n, ast.Node):
            for child in n.get_sub_nodes():
                walk(child)
        elif isinstance(n, list | tuple):
            for child in n:
                walk(child)

    walk(node)
    return found


class Evaluator:
    """Evaluates a parsed filter on a :class:`Table` whose properties are *queryables*.

    ``geometry`` names the features' geometry; date-time literals without an offset are
    in *timezone*.
    """

    def __init__(
        self, table: Table, queryables: Mapping[str, Queryable], timezone: str = "UTC"
    ) -> None:
        self.table = table
        self.queryables = queryables
        self.tz = ZoneInfo(timezone)
        self.n = len(table)

    def mask(self, node: ast.Node) -> BoolArray:
        """The features for which *node* is true."""
        true, _ = self.eval(node)
        return true

    # -- nodes --------------------------------------------------------------------------
    def eval(self, node: Any) -> Masks:
        handler = self._handlers().get(type(node))
        if handler is None:
            raise InvalidInputError("filter", f"{_node_name(node)} is not supported by this server")
        return handler(node)

    def _handlers(self) -> dict[type, Callable[[Any], Masks]]:
        return {
            ast.And: self._and,
            ast.Or: self._or,
            ast.Not: self._not,
            ast.Equal: self._compare,
            ast.NotEqual: self._compare,
            ast.LessThan: self._compare,
            ast.LessEqual: self._compare,
            ast.GreaterThan: self._compare,
            ast.GreaterEqual: self._compare,
            ast.Between: self._between,
            ast.In: self._in,
            ast.Like: self._like,
            ast.IsNull: self._is_null,
            ast.Include: lambda n: (self._all(), self._all()),
            ast.GeometryIntersects: self._spatial,
            ast.GeometryDisjoint: self._spatial,
            ast.GeometryWithin: self._spatial,
            ast.GeometryContains: self._spatial,
            ast.GeometryEquals: self._spatial,
            ast.ArrayContains: self._array,
            ast.ArrayContainedBy: self._array,
            ast.ArrayOverlaps: self._array,
            ast.ArrayEquals: self._array,
        }

    def _all(self) -> BoolArray:
        return np.ones(self.n, dtype=bool)

    def _and(self, node: Any) -> Masks:
        t1, k1 = self.eval(node.lhs)
        t2, k2 = self.eval(node.rhs)
        false1, false2 = k1 & ~t1, k2 & ~t2
        return t1 & t2, (k1 & k2) | false1 | false2

    def _or(self, node: Any) -> Masks:
        t1, k1 = self.eval(node.lhs)
        t2, k2 = self.eval(node.rhs)
        return t1 | t2, (k1 & k2) | t1 | t2

    def _not(self, node: Any) -> Masks:
        t, k = self.eval(node.sub_node)
        return k & ~t, k

    # -- operands -----------------------------------------------------------------------
    def _attribute(self, node: Any) -> tuple[str, Queryable]:
        if not isinstance(node, ast.Attribute):
            raise InvalidInputError(
                "filter", f"Expected a property name on the left of a comparison, got {node!r:.60}"
            )
        name = str(node.name)
        q = self.queryables.get(name)
        if q is None or name == "geometry":
            raise InvalidInputError(
                "filter",
                f"unknown property {name!r}; queryables: {', '.join(sorted(self.queryables))}",
            )
        return name, q

    def _literal(self, value: Any, q: Queryable, name: str) -> Any:
        """*value* as the type of property *name* (a float for numbers and date-times)."""
        if q.type in ("number", "integer"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInputError("filter", f"Expected a number for {name}, got {value!r}")
            return float(value)
        if q.type == "boolean":
            if not isinstance(value, bool):
                raise InvalidInputError(
                    "filter", f"Expected true or false for {name}, got {value!r}"
                )
            return value
        if q.type == "date-time":
            return self._instant(value, name)
        if q.type == "array":
            raise InvalidInputError(
                "filter", f"{name} is a list: use A_CONTAINS, A_OVERLAPS, A_CONTAINEDBY or A_EQUALS"
            )
        if not isinstance(value, str):
            raise InvalidInputError("filter", f"Expected a text value for {name}, got {value!r}")
        return value

    def _instant(self, value: Any, name: str) -> float:
        if isinstance(value, datetime):
            dt = value if value.tzinfo is not None else value.replace(tzinfo=self.tz)
            return dt.timestamp()
        if isinstance(value, date):
            return datetime.combine(value, time(), self.tz).timestamp()
        if isinstance(value, str):
            ts = parse_instant(value, self.tz)
            if ts is not None:
                return ts
        raise InvalidInputError(
            "filter", f"Expected a DATE('…') or TIMESTAMP('…') for {name}, got {value!r}"
        )

    def _operands(self, node: Any) -> tuple[str, Queryable, Any, bool]:
        """(property, queryable, literal, swapped) of a binary comparison."""
        lhs, rhs, swapped = node.lhs, node.rhs, False
        if not isinstance(lhs, ast.Attribute) and isinstance(rhs, ast.Attribute):
            lhs, rhs, swapped = rhs, lhs, True
        name, q = self._attribute(lhs)
        if isinstance(rhs, ast.Node):
            raise InvalidInputError(
                "filter", f"Expected a literal value to compare {name} with, got {rhs!r:.60}"
            )
        return name, q, self._literal(rhs, q, name), swapped

    def _by_category(
        self, name: str, test: Callable[[NDArray[np.object_]], NDArray[np.bool_]]
    ) -> Masks | None:
        """*test* on the distinct values of a text column, taken back by code (``None``
        when the table has no categories for *name*)."""
        cat = getattr(self.table, "categorical", None)
        got = cat(name) if cat is not None else None
        if got is None:
            return None
        codes, cats = got
        known = codes >= 0
        hit = np.asarray(test(cats), dtype=bool) if len(cats) else np.zeros(0, dtype=bool)
        true = np.zeros(self.n, dtype=bool)
        true[known] = hit[codes[known]]
        return true, known

    def _compare(self, node: Any) -> Masks:
        name, q, lit, swapped = self._operands(node)
        op = node.op.value
        if swapped:
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        if q.type == "string":
            fast = self._by_category(name, lambda c: _OPS[op](c.astype(str), lit))
            if fast is not None:
                return fast
        col = self.table.column(name)
        known = _known(col)
        true = np.zeros(self.n, dtype=bool)
        sub = col[known]
        if q.type == "string" and op not in ("=", "<>"):
            sub = sub.astype(str)
        true[known] = _OPS[op](sub, lit)
        return true, known

    def _between(self, node: Any) -> Masks:
        name, q = self._attribute(node.lhs)
        lo = self._literal(node.low, q, name)
        hi = self._literal(node.high, q, name)
        col = self.table.column(name)
        known = _known(col)
        true = np.zeros(self.n, dtype=bool)
        sub = col[known]
        inside = (sub >= lo) & (sub <= hi)
        true[known] = ~inside if node.not_ else inside
        return true, known

    def _in(self, node: Any) -> Masks:
        name, q = self._attribute(node.lhs)
        wanted = {self._literal(v, q, name) for v in node.sub_nodes}
        fast = self._by_category(
            name, lambda c: np.array([(v in wanted) != node.not_ for v in c.tolist()], dtype=bool)
        )
        if fast is not None:
            return fast
        col = self.table.column(name)
        known = _known(col)
        hit = np.fromiter((v in wanted for v in col.tolist()), dtype=bool, count=self.n)
        return (known & ~hit if node.not_ else known & hit), known

    def _like(self, node: Any) -> Masks:
        name, q = self._attribute(node.lhs)
        if q.type != "string":
            raise InvalidInputError("filter", f"LIKE needs a text property, {name} is {q.type}")
        pattern = like_regex(str(node.pattern), node.wildcard or "%", node.escapechar or "\\")
        rx = re.compile(pattern, re.IGNORECASE | re.DOTALL if node.nocase else re.DOTALL)
        fast = self._by_category(
            name,
            lambda c: np.array(
                [(rx.fullmatch(str(v)) is not None) != node.not_ for v in c.tolist()], dtype=bool
            ),
        )
        if fast is not None:
            return fast
        col = self.table.column(name)
        known = _known(col)
        hit = np.fromiter(
            (v is not None and rx.fullmatch(str(v)) is not None for v in col.tolist()),
            dtype=bool,
            count=self.n,
        )
        return (known & ~hit if node.not_ else hit), known

    def _is_null(self, node: Any) -> Masks:
        name, _ = self._attribute(node.lhs)
        cat = getattr(self.table, "categorical", None)
        got = cat(name) if cat is not None else None
        missing = got[0] < 0 if got is not None else ~_known(self.table.column(name))
        return (~missing if node.not_ else missing), self._all()

    def _spatial(self, node: Any) -> Masks:
        lhs, rhs = node.lhs, node.rhs
        op = _SPATIAL[type(node)]
        if isinstance(rhs, ast.Attribute) and not isinstance(lhs, ast.Attribute):
            lhs, rhs = rhs, lhs
            op = {"within": "contains", "contains": "within"}.get(op, op)
        if not (isinstance(lhs, ast.Attribute) and lhs.name == "geometry"):
            raise InvalidInputError(
                "filter", f"Expected the property geometry in {_node_name(node)}, got {lhs!r:.60}"
            )
        return self.table.spatial(op, literal_geometry(rhs)), self._all()

    def _array(self, node: Any) -> Masks:
        name, q = self._attribute(node.lhs)
        if q.type != "array":
            raise InvalidInputError(
                "filter", f"{_node_name(node)} needs a list property, {name} is {q.type}"
            )
        rhs = node.rhs
        if not isinstance(rhs, list | tuple) or not all(isinstance(v, str) for v in rhs):
            raise InvalidInputError("filter", f"Expected a list of text values, got {rhs!r:.60}")
        want = set(rhs)
        test: Callable[[set[str]], bool] = {
            ast.ArrayContains: want.issubset,
            ast.ArrayContainedBy: lambda s: s <= want,
            ast.ArrayOverlaps: lambda s: bool(s & want),
            ast.ArrayEquals: lambda s: s == want,
        }[type(node)]
        col = self.table.column(name)
        known = _known(col)
        hit = np.fromiter(
            (v is not None and test(set(v)) for v in col.tolist()), dtype=bool, count=self.n
        )
        return hit, known


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}

_SPATIAL: dict[type, str] = {
    ast.GeometryIntersects: "intersects",
    ast.GeometryDisjoint: "disjoint",
    ast.GeometryWithin: "within",
    ast.GeometryContains: "contains",
    ast.GeometryEquals: "equals",
}


def _node_name(node: Any) -> str:
    op = getattr(node, "op", None)
    return str(getattr(op, "value", None) or type(node).__name__)


def _known(col: NDArray[Any]) -> BoolArray:
    if col.dtype == object:
        none = np.asarray(None, dtype=object)
        return np.asarray(np.not_equal(col, none), dtype=np.bool_)  # elementwise, in C
    return np.asarray(~np.isnan(col), dtype=bool)


def like_regex(pattern: str, wildcard: str = "%", escape: str = "\\") -> str:
    """A CQL2 ``LIKE`` pattern as a regular expression (``%`` any text, ``_`` one
    character, *escape* before either takes it literally)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == wildcard else "." if c == "_" else re.escape(c))
        i += 1
    return "".join(out)


def literal_geometry(value: Any) -> Any:
    """A shapely geometry from a pygeofilter geometry, envelope or ``BBOX`` literal.

    Raises
    ------
    InvalidInputError
        Naming ``filter`` when the value is no geometry or is out of range.
    """
    if isinstance(value, values.Geometry):
        geom = shapely.geometry.shape(value.geometry)
    elif isinstance(value, values.Envelope):
        geom = shapely.box(value.x1, value.y1, value.x2, value.y2)
    elif isinstance(value, ast.Function) and value.name.lower() == "bbox":
        args = value.arguments
        if len(args) not in (4, 6) or not all(isinstance(a, int | float) for a in args):
            raise InvalidInputError("filter", f"Expected BBOX of 4 or 6 numbers, got {args!r}")
        x1, y1, x2, y2 = (
            (args[0], args[1], args[2], args[3])
            if len(args) == 4
            else (args[0], args[1], args[3], args[4])
        )
        if x1 > x2:  # crosses the antimeridian
            geom = shapely.union(shapely.box(x1, y1, 180.0, y2), shapely.box(-180.0, y1, x2, y2))
        else:
            geom = shapely.box(x1, y1, x2, y2)
    else:
        raise InvalidInputError("filter", f"Expected a geometry, got {value!r:.60}")
    x0, y0, x9, y9 = shapely.bounds(geom).tolist()
    if not all(math.isfinite(v) for v in (x0, y0, x9, y9)) or abs(y0) > 90 or abs(y9) > 90:
        raise InvalidInputError("filter", "Expected a geometry in lon/lat (CRS84) within range")
    return geom


def parse_instant(text: str, tz: ZoneInfo) -> float | None:
    """POSIX seconds of an ISO 8601 date or date-time (naive: in *tz*); ``None`` if it is not one."""
    s = text.strip()
    if not s:
        return None
    try:
        if len(s) == 10:
            return datetime.combine(date.fromisoformat(s), time(), tz).timestamp()
        dt = datetime.fromisoformat(s.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


def instant_column(texts: Sequence[Any], tz: ZoneInfo) -> NDArray[np.float64]:
    """POSIX seconds of ISO 8601 values (``nan`` where missing or not a date)."""
    out = np.full(len(texts), np.nan)
    for i, v in enumerate(texts):
        if v is not None and v != "":
            ts = parse_instant(str(v), tz)
            if ts is not None:
                out[i] = ts
    return out


def number_column(items: Sequence[Any]) -> NDArray[np.float64]:
    """Floats of numeric values (``nan`` where missing or not a number)."""
    return np.array(
        [
            float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan
            for v in items
        ],
        dtype=np.float64,
    ).reshape(len(items))

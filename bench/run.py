"""Run every benchmark module (``bench/bench_*.py``) and write ``docs/benchmarks.md``.

Each module exposes ``run() -> list[dict]`` with rows ``name, yizhan_s, peer, peer_s,
ratio, note`` (optionally ``target`` and ``pass``). A module that is missing, cannot be
imported (e.g. its peer library is not installed) or fails is skipped with a note; the
others still run. Results are printed as one table and written, with the machine, the
date and the command, to ``docs/benchmarks.md``.

Usage::

    .venv/bin/python bench/run.py                 # every bench_*.py, writes the doc
    .venv/bin/python bench/run.py nearest maps    # only these two; prints, does not write
    .venv/bin/python bench/run.py nearest --write # ... and writes the doc with only them
    .venv/bin/python bench/run.py --no-write      # everything, print only
    .venv/bin/python bench/run.py edits --markdown  # print the module's section as written
    .venv/bin/python bench/run.py http --update --baseline 0606e9f
        # rewrite only this module's section (and its target/check lines) in the doc;
        # --baseline goes to modules whose run() takes it (bench_http: before vs after)

A module may define ``TITLE`` (the section heading instead of its name),
``markdown(rows) -> str`` (the section body instead of the generic table) and ``CLAIMS``
(prefixes of benchmark names it owns: ``--update`` removes such rows and lines from the
other sections, where an older module may have written them).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import shlex
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402

DOC = common.ROOT / "docs" / "benchmarks.md"
#: Modules other engineers are writing; listed so their absence is reported, not silent.
EXPECTED = ("bench_nearest", "bench_http", "bench_coverage", "bench_siting", "bench_maps")


def discover(only: list[str]) -> list[str]:
    """Module names to run: every ``bench_*.py`` here plus the expected ones, in order."""
    found = sorted(p.stem for p in HERE.glob("bench_*.py"))
    names = list(dict.fromkeys([*EXPECTED, *found]))
    if only:
        want = {n if n.startswith("bench_") else f"bench_{n}" for n in only}
        names = [n for n in names if n in want] + sorted(want - set(names))
    return names


def run_module(name: str, **options: Any) -> tuple[list[dict[str, Any]], str]:
    """The rows of one module and a status line (``ok``, ``skipped: …`` or ``failed: …``).

    *options* (not ``None``) go to ``run()`` when it takes them by name.
    """
    if not (HERE / f"{name}.py").exists():
        return [], "skipped: not written yet (no bench/" + name + ".py)"
    try:
        mod = importlib.import_module(name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        return [], f"skipped: cannot import ({missing} missing?)"
    except Exception as exc:
        return [], f"failed on import: {type(exc).__name__}: {exc}"
    fn = getattr(mod, "run", None)
    if not callable(fn):
        return [], "skipped: no run() function"
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in options.items() if v is not None and k in params}
    t0 = time.perf_counter()
    try:
        rows = list(fn(**kwargs))
    except ImportError as exc:
        return [], f"skipped: {getattr(exc, 'name', None) or exc} not installed"
    except Exception as exc:
        traceback.print_exc()
        return [], f"failed: {type(exc).__name__}: {exc}"
    return rows, f"ok ({len(rows)} rows in {time.perf_counter() - t0:.0f} s)"


def machine_md(info: dict[str, str], load: tuple[float, float]) -> str:
    lines = [f"- **{k}**: {v}" for k, v in info.items()]
    lines.append(
        f"- **load average** (1 min) at start / end: {load[0]:.1f} / {load[1]:.1f} — the machine "
        "is shared, so numbers taken under load are pessimistic and noisy"
    )
    threads = os.environ.get("OMP_NUM_THREADS")
    lines.append(
        f"- **OMP_NUM_THREADS**: {threads if threads else 'unset (OpenMP uses every core)'}"
    )
    return "\n".join(lines)


def section_md(name: str, status: str, rows: list[dict[str, Any]]) -> list[str]:
    """The lines of one module's section: its ``TITLE`` (or name) and its ``markdown(rows)``
    (or the generic table), then its status unless it ran fine."""
    mod = sys.modules.get(name)
    title = getattr(mod, "TITLE", None) or name
    render = getattr(mod, "markdown", None)
    parts = [f"### {title}", ""]
    if rows:
        parts += [render(rows) if callable(render) else common.table(rows), ""]
    if not status.startswith("ok"):
        parts += [f"_{status}_", ""]
    return parts


def write_doc(
    sections: list[tuple[str, str, list[dict[str, Any]]]],
    info: dict[str, str],
    load: tuple[float, float],
    command: str,
    started: datetime,
    took_s: float,
) -> None:
    all_rows = [r for _, _, rows in sections for r in rows]
    parts = [
        "# Benchmarks",
        "",
        "Generated by `bench/run.py`; do not edit by hand (rerun it instead). How each "
        "benchmark is set up, and what the peers are, is in [bench/README.md](../bench/README.md).",
        "",
        f"- **date**: {started:%Y-%m-%d %H:%M} UTC, {took_s / 60:.1f} min",
        f"- **command**: `{command}`",
        "",
        "## Machine",
        "",
        machine_md(info, load),
        "",
        "## Targets",
        "",
        "```",
        *(common.target_lines(all_rows) or ["(no targets in these results)"]),
        "```",
        "",
        "## Correctness checks run with the benchmarks",
        "",
        *([f"- {c}" for c in common.check_lines(all_rows)] or ["(none)"]),
        "",
        "## Results",
        "",
        "`peer / yizhan` is the peer's time divided by Yizhan's: how many times faster Yizhan is "
        "(below 1×: slower). Times are medians over repeated runs unless a note says otherwise.",
        "",
    ]
    for name, status, rows in sections:
        parts += section_md(name, status, rows)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(parts).rstrip() + "\n", encoding="utf-8")


def _section_bounds(lines: list[str], title: str) -> tuple[int, int] | None:
    """Where the ``### title`` section is in *lines*: ``[start, end)``, or ``None``."""
    try:
        start = lines.index(f"### {title}")
    except ValueError:
        return None
    end = start + 1
    while end < len(lines) and not lines[end].startswith(("### ", "## ")):
        end += 1
    return start, end


def _claimed(text: str, prefixes: tuple[str, ...]) -> bool:
    """Whether a table row, target line or check line is about a claimed benchmark."""
    t = text.strip()
    if t.startswith(("| ", "- ")):
        t = t[2:]
    elif t.startswith(("PASS  ", "MISS  ", "?  ")):
        t = t.split("  ", 1)[1]
    return t.startswith(prefixes)


def update_doc(sections: list[tuple[str, str, list[dict[str, Any]]]], command: str) -> None:
    """Rewrite only these modules' sections of docs/benchmarks.md (added after the section
    of the module before them when missing), their target and check lines, and an
    ``updated`` line in the header; everything else stays as it was."""
    lines = DOC.read_text(encoding="utf-8").rstrip("\n").split("\n")
    order = discover([])
    new_rows = [r for _, _, rows in sections for r in rows]
    claims: tuple[str, ...] = tuple(
        dict.fromkeys(
            [str(r["name"]) for r in new_rows if r.get("name")]
            + [c for name, _, _ in sections for c in getattr(sys.modules.get(name), "CLAIMS", ())]
        )
    )
    bodies: dict[str, list[str]] = {}
    for name, status, rows in sections:
        mod = sys.modules.get(name)
        title = getattr(mod, "TITLE", None) or name
        bodies[title] = section_md(name, status, rows)
        if _section_bounds(lines, title) is None:  # place it after its predecessor's
            at = len(lines)
            for prev in reversed(order[: order.index(name)] if name in order else order):
                prev_title = getattr(sys.modules.get(prev), "TITLE", None) or prev
                found = _section_bounds(lines, prev_title)
                if found:
                    at = found[1]
                    break
            lines[at:at] = [f"### {title}", ""]
    # Claimed rows and lines elsewhere go; the new sections replace the old ones.
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("### ") and line[4:] in bodies:
            title = line[4:]
            bounds = _section_bounds(lines, title)
            assert bounds is not None
            out += bodies[title]
            i = bounds[1]
            continue
        if not _claimed(line, claims):
            out.append(line)
        i += 1
    # New target and check lines at the end of their lists.
    targets = common.target_lines(new_rows)
    checks = [f"- {c}" for c in common.check_lines(new_rows)]
    t_head = out.index("## Targets")
    t_end = out.index("```", out.index("```", t_head) + 1)
    out[t_end:t_end] = targets
    out = [x for x in out if x != "(no targets in these results)"] if targets else out
    c_head = out.index("## Correctness checks run with the benchmarks")
    c_end = out.index("## Results", c_head)
    while out[c_end - 1] == "":
        c_end -= 1
    out[c_end:c_end] = checks
    if checks:
        out = [x for x in out if x != "(none)"]
    stamp = (
        f"- **updated**: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, only "
        + ", ".join(f"`{name}`" for name, _, _ in sections)
        + f": `{command}`"
    )
    old = [j for j, x in enumerate(out) if x.startswith("- **updated**:")]
    if old:
        out[old[0]] = stamp
    else:
        out.insert(out.index("## Machine") - 1, stamp)
    DOC.write_text("\n".join(out).rstrip() + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Run Yizhan's benchmarks and write docs/benchmarks.md."
    )
    ap.add_argument("only", nargs="*", help="module names (nearest, coverage, …); default all")
    ap.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument(
        "--write",
        action="store_true",
        help="write docs/benchmarks.md even when only some modules run (it then lists only them)",
    )
    ap.add_argument(
        "--update",
        action="store_true",
        help="rewrite only the sections of the modules run in docs/benchmarks.md",
    )
    ap.add_argument(
        "--markdown",
        action="store_true",
        help="also print each module's section as it would be written to docs/benchmarks.md",
    )
    ap.add_argument(
        "--baseline",
        metavar="REF",
        help="a commit to measure beside this checkout, for modules that take one (bench_http)",
    )
    args = ap.parse_args(argv)
    write = args.write or (not args.only and not args.no_write and not args.update)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    sections: list[tuple[str, str, list[dict[str, Any]]]] = []
    for name in discover(args.only):
        common.log(f"== {name}")
        rows, status = run_module(name, baseline=args.baseline)
        common.log(f"== {name}: {status}")
        sections.append((name, status, rows))
    took = time.perf_counter() - t0
    load = (load0, os.getloadavg()[0])
    all_rows = [r for _, _, rows in sections for r in rows]
    print(common.table(all_rows) if all_rows else "(no results)")
    print()
    for name, status, _ in sections:
        if not status.startswith("ok"):
            print(f"{name}: {status}")
    lines = common.target_lines(all_rows) + common.check_lines(all_rows)
    if lines:
        print()
        print("\n".join(lines))
    if args.markdown:
        for name, status, rows in sections:
            print()
            print("\n".join(section_md(name, status, rows)).rstrip())
    cmd = " ".join(
        [".venv/bin/python", "bench/run.py", *(shlex.quote(a) for a in (argv or sys.argv[1:]))]
    )
    if args.update and DOC.exists():
        update_doc(sections, cmd)
        print(f"\nupdated {DOC.relative_to(common.ROOT)}")
    elif write or args.update:
        write_doc(sections, common.machine(), load, cmd, started, took)
        print(f"\nwrote {DOC.relative_to(common.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

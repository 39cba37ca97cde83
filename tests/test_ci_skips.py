"""The CI rule for skips (tests/ci_skips.py): missing components fail under CI=true only."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

PROBE = """
import pytest

@pytest.mark.skipif(True, reason="needs /usr/bin/nothing (apt-get install nothing)")
def test_component():
    pass

def test_ordinary():
    pytest.skip("not this platform")

def test_missing_module():
    pytest.importorskip("a_module_that_does_not_exist_here")
"""


@pytest.mark.parametrize(
    ("ci", "failed", "skipped"),
    [("true", 2, 1), ("", 0, 3), ("false", 0, 3)],
)
def test_missing_component_fails_only_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, failed: int, skipped: int
) -> None:
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(PROBE)
    result = pytester.runpytest("-p", "tests.ci_skips")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) + outcomes.get("failed", 0) == failed
    assert outcomes.get("skipped", 0) == skipped

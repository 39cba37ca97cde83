"""Fuzzing the API with schemathesis: requests generated from the app's own OpenAPI schema,
with an admin token and without one, must never get a 5xx, an undocumented status, or a
response that breaks the schema; schema-violating requests must be refused with a 4xx.

Bounded and deterministic in ``make test``: a few examples per operation (``FUZZ_EXAMPLES``,
default 8), derandomized (a fixed seed) and without hypothesis's example database, so a
run on a fresh clone always generates the same requests. ``make fuzz`` explores: many more
examples (``FUZZ_EXAMPLES=200``) with fresh randomness each run (``FUZZ_RANDOM=1``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from yizhan.api import create_app
from yizhan.settings import DEFAULT_REGISTRY, Settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import (  # noqa: E402
    negative_data_rejection,
    positive_data_acceptance,
)

ADMIN = "fuzz-admin-token"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
#: ``FUZZ_RANDOM=1``: fresh randomness (exploration); otherwise one fixed seed.
DETERMINISTIC = os.environ.get("FUZZ_RANDOM", "") != "1"
FUZZ = {
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "derandomize": DETERMINISTIC,
    "database": None,
}

_tmp = Path(tempfile.mkdtemp(prefix="yizhan-fuzz-"))
shutil.copy(DEFAULT_REGISTRY, _tmp / "reg.geojson")
app = create_app(
    Settings(
        registry=_tmp / "reg.geojson",
        state_dir=_tmp / "state",
        admin_token=ADMIN,
        reload_interval_s=0,
    )
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def _running() -> Iterator[None]:
    with TestClient(app):  # runs the lifespan: the registry is loaded into app.state
        yield
    shutil.rmtree(_tmp, ignore_errors=True)


# positive_data_acceptance is left out: a request can fit the schema and still be refused
# for reasons a schema cannot say (an id that does not exist, a bbox with minlat > maxlat).
@schema.parametrize()
@settings(max_examples=EXAMPLES, **FUZZ)
def test_api_as_admin(case: schemathesis.Case) -> None:
    # negative_data_rejection too: a case "without the required Authorization header"
    # gets the admin token added here, so it is a valid request.
    case.call_and_validate(
        headers={"Authorization": f"Bearer {ADMIN}"},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )


@schema.parametrize()
@settings(max_examples=max(2, EXAMPLES // 2), **FUZZ)
def test_api_as_public(case: schemathesis.Case) -> None:
    case.call_and_validate(excluded_checks=[positive_data_acceptance])

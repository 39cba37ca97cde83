"""Write the registry's JSON Schema (generated from the pydantic models).

Run ``python -m yizhan.stations.schema`` after changing :mod:`yizhan.stations.models`;
a test fails while the shipped file and the models disagree.
"""

from __future__ import annotations

import json
from pathlib import Path

from yizhan.stations.models import StationCollection

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "registry.schema.json"


def schema_text() -> str:
    return json.dumps(StationCollection.model_json_schema(), ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")

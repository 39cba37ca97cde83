"""Settings, read from ``YIZHAN_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import opening_hours
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Data installed with the package (read through importlib.resources, so an installed
#: wheel serves it from any directory).
BUNDLED_DATA = Path(str(files("yizhan").joinpath("data")))
#: The bundled registry: real Zhengzhou union stations (see yizhan/data/SOURCES.md).
DEFAULT_REGISTRY = BUNDLED_DATA / "zhengzhou.geojson"
#: Zhengzhou district boundaries, the bundled registry's study area (demo/tests only,
#: see yizhan/data/zhengzhou-districts.SOURCE.txt).
DEFAULT_DISTRICTS = BUNDLED_DATA / "zhengzhou-districts.geojson"

#: ``holiday_country`` value meaning "each feature's country, from its location".
AUTO_COUNTRY = "auto"


class Settings(BaseSettings):
    """Everything the API and CLI can be configured with.

    Each field can be set with an environment variable ``YIZHAN_<FIELD>``, e.g.
    ``YIZHAN_REGISTRY=/srv/stations.geojson``. Dictionaries and lists are JSON, e.g.
    ``YIZHAN_OPERATOR_TOKENS='{"s3cret-token": "郑州公交"}'``.
    """

    model_config = SettingsConfigDict(env_prefix="YIZHAN_", extra="ignore")

    registry: Path = Field(DEFAULT_REGISTRY, description="GeoJSON registry to serve.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    default_k: int = Field(5, ge=1)
    max_k: int = Field(100, ge=1, description="Larger k is clamped to this.")
    default_limit: int = Field(100, ge=1)
    max_limit: int = Field(1000, ge=1, description="Larger limit is clamped to this.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS.")
    timezone: str = Field("Asia/Shanghai", description="Time zone of the registry's opening hours.")
    holiday_country: str | None = Field(
        "CN",
        description="ISO country whose public holidays `PH` means (the registry's region); "
        "`auto`: each feature's country, from its location.",
    )
    operator_tokens: dict[str, str] = Field(
        default_factory=dict,
        description="Bearer token -> operator name (as in the buses' `operator`); such a "
        "token may move that operator's buses.",
    )
    admin_tokens: list[str] = Field(
        default_factory=list,
        description="Bearer tokens that may declare heat alerts and move any bus.",
    )
    state_dir: Path | None = Field(
        None,
        description="Where placements and alerts are kept (default: next to the registry).",
    )
    admin_token: str | None = Field(
        None,
        description="Bootstrap admin bearer token (`YIZHAN_ADMIN_TOKEN`), e.g. to create the "
        "first tokens; others are kept hashed in the token file (`yizhan token create`).",
    )
    stale_after_days: int = Field(
        180, ge=1, le=3650, description="A station not verified for this many days is stale."
    )
    reload_interval_s: float = Field(
        2.0,
        ge=0,
        description="How often the server checks whether the registry file changed on disk "
        "(and reloads it after validating it); 0: never.",
    )
    max_body_bytes: int = Field(
        65536, ge=1024, description="Largest request body accepted (bytes); larger: 413."
    )
    report_window_days: int = Field(
        14, ge=1, le=365, description="Reports older than this no longer mark needs_check."
    )
    report_threshold: int = Field(
        2,
        ge=1,
        le=100,
        description="Reports of the same problem from this many different clients mark a "
        "station needs_check.",
    )
    report_rate_per_hour: int = Field(10, ge=1, description="Reports one client may send per hour.")
    report_rate_per_station_per_day: int = Field(
        3, ge=1, description="Reports one client may send about one station per day."
    )
    trust_forwarded_for: bool = Field(
        False,
        description="Identify report clients by the first X-Forwarded-For address (only "
        "behind a proxy that sets it).",
    )
    max_placement_days: int = Field(7, ge=1, le=31, description="Longest placement window.")
    max_alert_days: int = Field(14, ge=1, le=92, description="Longest heat-alert window.")
    # -- planning (coverage analysis and maps) ------------------------------------------
    demand: Path | None = Field(
        None,
        description="Demand for /coverage and the maps: points (CSV/GeoJSON) or polygons (GeoJSON).",
    )
    demand_weight: str | None = Field(None, description="Weight column of the demand file.")
    demand_crs: Literal["wgs84", "gcj02", "bd09"] = Field(
        "wgs84", description="System of the demand and district files."
    )
    districts: Path | None = Field(
        None,
        description="District polygons (GeoJSON) for per-district results; without a demand file a hexagon "
        "grid over them is the demand. Default for the bundled registry: the bundled Zhengzhou districts.",
    )
    district_field: str = Field("name", description="Property holding the district name.")
    hex_size_m: float = Field(500.0, gt=0, description="Hexagon size of grid demand, metres.")
    # -- usage: check-ins, visit counts, photos, scores (docs/evaluation.md) ---------------
    salt_file: Path | None = Field(
        None,
        description="Secret file keeping the daily salts of client hashes (check-ins, reports), "
        "shared by server processes and kept over restarts; never in the registry's or "
        "state directory. Default: memory only.",
    )
    checkin_interval_hours: float = Field(
        4.0, gt=0, le=48, description="One check-in per client and station in this many hours."
    )
    checkin_radius_m: float = Field(
        300.0,
        gt=0,
        le=10_000,
        description="A check-in's position must be this close to the station (or the bus).",
    )
    checkin_rate_per_hour: int = Field(
        12, ge=1, description="Check-ins one client may make per hour (all stations)."
    )
    busy_min_checkins: int = Field(
        3,
        ge=1,
        description="Check-ins in the last hour needed before a station says how busy it is.",
    )
    photo_max_bytes: int = Field(
        12 * 1024 * 1024, ge=65536, description="Largest photo upload accepted (bytes)."
    )
    photo_max_px: int = Field(
        1600,
        ge=320,
        le=8000,
        description="Photos are resized to at most this many pixels wide/high.",
    )
    score_weights: Path | None = Field(
        None,
        description="TOML file of the station score's weights and rules (default: the bundled "
        "yizhan/data/score-weights.toml).",
    )

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(
                f"Expected an IANA time zone such as Asia/Shanghai, got {value!r}"
            ) from None
        return value

    @field_validator("holiday_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        v = value.strip()
        if v.lower() == AUTO_COUNTRY:
            return AUTO_COUNTRY
        try:
            opening_hours.OpeningHours("PH", country=v.upper())
        except Exception:
            raise ValueError(
                f"Expected an ISO 3166 country code with a holiday calendar (such as CN) or "
                f"'auto', got {value!r}"
            ) from None
        return v.upper()

    def state_file(
        self, registry_path: Path | None, kind: str, suffix: str = ".json"
    ) -> Path | None:
        """Where the *kind* (``placements``, ``alerts``, ``tokens``, ``reports``, ``audit``)
        of a registry are kept.

        ``<state_dir>/<registry file name>.<kind><suffix>`` when ``state_dir`` is set, else
        next to the registry; ``None`` (memory only) for a registry without a file.
        """
        name = registry_path.name if registry_path is not None else "registry"
        if self.state_dir is not None:
            return self.state_dir / f"{name}.{kind}{suffix}"
        if registry_path is None:
            return None
        return registry_path.with_name(f"{name}.{kind}{suffix}")

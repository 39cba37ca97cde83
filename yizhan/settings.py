"""Settings, read from ``YIZHAN_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from importlib.resources import files
from ipaddress import ip_network
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import opening_hours
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Data installed with the package (read through importlib.resources, so an installed
#: wheel serves it from any directory).
BUNDLED_DATA = Path(str(files("yizhan").joinpath("data")))
#: The bundled registry: real Zhengzhou union stations (see yizhan/data/SOURCES.md).
DEFAULT_REGISTRY = BUNDLED_DATA / "zhengzhou.geojson"
#: Zhengzhou district boundaries, the bundled registry's study area (demo/tests only,
#: see yizhan/data/zhengzhou-districts.SOURCE.txt).
DEFAULT_DISTRICTS = BUNDLED_DATA / "zhengzhou-districts.geojson"

#: Shortest bootstrap admin token (``YIZHAN_ADMIN_TOKEN``) accepted.
MIN_ADMIN_TOKEN_CHARS = 16

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
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of the reverse proxies in front of the server, e.g. "
        '`["127.0.0.1", "10.0.0.0/8"]`. A request from one of them is attributed to the '
        "right-most X-Forwarded-For address that is not itself a trusted proxy; a request "
        "from anyone else to its own address (X-Forwarded-For ignored).",
    )
    trust_forwarded_for: bool = Field(
        False,
        description="Deprecated: use `trusted_proxies`. Treats every peer as one proxy hop: "
        "the right-most X-Forwarded-For address is the client (only behind exactly one "
        "proxy that appends to it).",
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
    # -- analyses (/coverage, /analysis/site, /maps/coverage) --------------------------
    analysis_access: Literal["public", "token"] = Field(
        "public",
        description="Who may run analyses: anyone, or only holders of a valid bearer token.",
    )
    analysis_workers: int = Field(
        2, ge=1, le=64, description="Analyses run at once, each in its own process."
    )
    analysis_queue: int = Field(
        4, ge=0, le=1000, description="Analyses waiting for a worker; more: 503 + Retry-After."
    )
    analysis_timeout_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Hard wall-clock limit of one analysis: its process is killed then (503).",
    )
    analysis_memory_mb: int = Field(
        1024,
        ge=64,
        le=1_048_576,
        description="Address space one analysis process may add (RLIMIT_AS); beyond: 503.",
    )
    analysis_max_radius_m: float = Field(
        20_000.0, gt=0, le=100_000, description="Largest radius_m an analysis accepts (422)."
    )
    analysis_rate_per_hour: int = Field(
        120, ge=1, description="Analyses one client may start per hour; more: 429."
    )
    analysis_per_client: int = Field(
        2, ge=1, description="Analyses one client may have running or waiting at once; more: 429."
    )
    # -- request and connection limits ---------------------------------------------------
    max_json_depth: int = Field(
        32, ge=4, le=200, description="Deepest nesting of a JSON request body; deeper: 422."
    )
    auth_failure_limit: int = Field(
        10, ge=1, description="Failed bearer tokens one client may send per window; more: 429."
    )
    auth_failure_window_s: float = Field(
        600.0, ge=1, le=86_400, description="Window of auth_failure_limit, seconds."
    )
    body_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Time a client has to send a request body; then 408."
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="`yizhan serve`: time a connection has to send a request's headers "
        "(from connecting, or from the end of the previous response); then it is closed.",
    )
    keep_alive_s: int = Field(
        5,
        ge=1,
        le=600,
        description="`yizhan serve`: idle keep-alive connections are closed after this.",
    )
    max_header_bytes: int = Field(
        16_384,
        ge=1024,
        le=1_048_576,
        description="`yizhan serve`: largest request head (request line and headers); larger: closed.",
    )
    limit_concurrency: int | None = Field(
        None,
        ge=2,
        description="`yizhan serve`: open connections; at the limit the connection that has "
        "waited longest for a request is closed for a new one, and requests beyond it get 503. "
        "Default: 1000, less when the open-file limit is lower.",
    )
    overload_log_interval_s: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="Overload conditions are logged at most once per interval.",
    )

    @field_validator("admin_token")
    @classmethod
    def _admin_token(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if len(value) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(
                f"YIZHAN_ADMIN_TOKEN: Expected at least {MIN_ADMIN_TOKEN_CHARS} characters "
                f"(a bootstrap admin token is a password), got {len(value)}"
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                out.append(str(ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"YIZHAN_TRUSTED_PROXIES: Expected IP addresses or networks such as "
                    f"127.0.0.1 or 10.0.0.0/8, got {item!r}"
                ) from None
        return out

    @model_validator(mode="after")
    def _one_proxy_setting(self) -> Settings:
        if self.trust_forwarded_for and self.trusted_proxies:
            raise ValueError(
                "YIZHAN_TRUST_FORWARDED_FOR: deprecated, and YIZHAN_TRUSTED_PROXIES is set; "
                "remove YIZHAN_TRUST_FORWARDED_FOR"
            )
        return self

    # -- storage --------------------------------------------------------------------------
    database_url: str | None = Field(
        None,
        description="PostgreSQL (with PostGIS) to keep the registry and every other kind of "
        "state in, e.g. `postgresql://yizhan@db.internal/yizhan` (`YIZHAN_DATABASE_URL`); "
        "unset: files beside the registry. See docs/database.md.",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        v = value.strip()
        if not v.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                f"Expected a PostgreSQL URL such as postgresql://user@host/dbname, got {v!r}"
            )
        return v

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

    # -- the workers' pages (kept at the end of the class) ----------------------------------
    area_radius_m: float = Field(
        50_000.0,
        gt=0,
        le=20_000_000,
        description="A position with no station within this many metres is outside the "
        "registry's area: the find page says 'no station in your area' (and offers to suggest "
        "one) instead of listing stations hundreds of kilometres away.",
    )
    public_url: str | None = Field(
        None,
        description="The address workers' phones reach the server at, e.g. "
        "https://yizhan.example.org (`YIZHAN_PUBLIC_URL`): posters' QR codes and printed "
        "links use it, never the request's Host header.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        text = value.strip()
        scheme, sep, rest = text.partition("://")
        host = rest.split("/", 1)[0]
        if (
            scheme.lower() not in ("http", "https")
            or not sep
            or not host
            or any(c in rest for c in "?#@ \\")
        ):
            raise ValueError(
                f"Expected an http:// or https:// address without query, fragment or user "
                f"such as https://yizhan.example.org, got {value!r}"
            )
        return text.rstrip("/")

    # -- base maps (yizhan.maps.basemaps) ----------------------------------------------------
    tianditu_key: str | None = Field(
        None,
        description="Key of a Tianditu (天地图) application (console.tianditu.gov.cn): the "
        "planner maps then offer Tianditu's base map. It is written into the map pages.",
    )

    # -- walking (yizhan.query.walking; docs/walking.md) ----------------------------------------
    network: Path | None = Field(
        None,
        description="Walking network file built by `yizhan network build` (`YIZHAN_NETWORK`): "
        "loaded at start; `/nearest?metric=walk`, isochrones and coverage by walking use it.",
    )
    walk_speed_kmh: float = Field(
        4.5,
        gt=0,
        le=20,
        description="Walking speed, km/h, turning walking metres into minutes (4.5 km/h: "
        "75 m a minute, a 15-minute walk is 1,125 m).",
    )
    walk_max_snap_m: float = Field(
        300.0,
        gt=0,
        le=100_000,
        description="A point or station farther than this many metres from every walkable way "
        "is outside the network's area: walking queries from it are refused (422) and "
        "`yizhan validate --network` flags such stations.",
    )

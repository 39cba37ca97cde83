"""Settings, read from ``YIZHAN_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The bundled registry: real Zhengzhou union stations (see data/SOURCES.md).
DEFAULT_REGISTRY = Path(__file__).resolve().parent.parent / "data" / "zhengzhou.geojson"


class Settings(BaseSettings):
    """Everything the API and CLI can be configured with.

    Each field can be set with an environment variable ``YIZHAN_<FIELD>``, e.g.
    ``YIZHAN_REGISTRY=/srv/stations.geojson``.
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

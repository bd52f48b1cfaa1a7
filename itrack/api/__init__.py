"""The HTTP API (FastAPI): `create_app(ApiConfig(...))`, served by `itrack serve`."""

from itrack.api.app import ApiConfig, create_app

__all__ = ["ApiConfig", "create_app"]

"""`GET /health`: is the store reachable, is a warehouse published (and which build)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from itrack.api.errors import error_responses
from itrack.api.models import with_example
from itrack.api.warehouse import BuildInfo, open_warehouse

router = APIRouter(tags=["health"])


class Component(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ok: bool
    detail: str


class Health(BaseModel):
    """`status` is ok when the store is reachable; the warehouse is reported beside it (the
    interview endpoints work without one, the analytics endpoints need it)."""

    model_config = with_example(
        {
            "status": "ok",
            "store_kind": "duckdb",
            "store": {"ok": True, "detail": "data/warehouse.raw.duckdb"},
            "warehouse": {"ok": True, "detail": "data/warehouse.duckdb"},
            "build": {
                "build_id": "1f3a9c2b7d-4e21",
                "published_at": "2026-03-06T02:14:09Z",
                "warehouse": "data/warehouse.duckdb",
            },
        }
    )
    status: str
    store_kind: str
    store: Component
    warehouse: Component
    build: BuildInfo | None = None


@router.get(
    "/health",
    response_model=Health,
    responses={
        **error_responses(422),  # a query parameter it does not take (it takes none)
        503: {"model": Health, "description": "The store is not reachable"},
    },
    summary="Store and warehouse reachability (no authentication)",
)
def health(request: Request) -> Any:
    backend = request.app.state.backend
    store_ok, store_detail = backend.store_health()
    build = None
    try:
        with open_warehouse(request.app.state.config.db) as (con, build):
            con.execute("select 1").fetchone()
        warehouse = Component(ok=True, detail=build.warehouse)
    except Exception as exc:  # health reports, never raises
        build = None
        warehouse = Component(ok=False, detail=str(exc).splitlines()[0] if str(exc) else "error")
    body = Health(
        status="ok" if store_ok else "unavailable",
        store_kind=backend.name,
        store=Component(ok=store_ok, detail=store_detail),
        warehouse=warehouse,
        build=build,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if store_ok else 503)

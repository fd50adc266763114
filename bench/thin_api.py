"""The thinnest HTTP front on the bare workflow, for `bench/lifecycle.py --floor`.

The same stack as Countersign's API (FastAPI under uvicorn with uvloop, httptools and the
access log; a Temporal client in the process), but no authentication, no database, no
policy and no response beyond a few fields: what an HTTP API on Temporal costs before any
of the product's own work.

    COUNTERSIGN_TEMPORAL_ADDRESS=... THIN_TASK_QUEUE=... python bench/thin_api.py PORT
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

sys.path.pop(0)  # not bench/: its modules are imported as `bench.x`, from the root

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from temporalio.client import Client

WORKFLOW, UPDATE = "BareRecordedApproval", "advance"


class Start(BaseModel):
    n: int


class Step(BaseModel):
    step: int


def create_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.client = await Client.connect(os.environ["COUNTERSIGN_TEMPORAL_ADDRESS"])
        yield

    app = FastAPI(lifespan=lifespan)
    queue = os.environ["THIN_TASK_QUEUE"]

    @app.post("/bare", status_code=201)
    async def start(body: Start) -> dict[str, int]:
        await app.state.client.start_workflow(
            WORKFLOW, body.n, id=f"thin-{queue}-{body.n}", task_queue=queue
        )
        return {"id": body.n}

    @app.post("/bare/{n}/advance")
    async def advance(n: int, body: Step) -> dict[str, int]:
        handle = app.state.client.get_workflow_handle(f"thin-{queue}-{n}")
        step = await handle.execute_update(UPDATE, body.step, result_type=int)
        return {"id": n, "step": step}

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="info",
        proxy_headers=True,
        loop="uvloop",
        http="httptools",
    )

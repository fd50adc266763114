"""Tests that drive a draft's workflow directly, below the API, seal their actions as the
API would (`lifecycle.seals`): the worker refuses any other."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from lifecycle import seals
from records.settings import DEV_ACTION_KEY


def seal(
    request: Any,
    *,
    workflow_id: str,
    update: str,
    update_id: str,
    author: str = "agent",
    key: str = DEV_ACTION_KEY,
    at: datetime | None = None,
) -> Any:
    """`request` with the seal the API would give it (with `key`, dated `at`)."""
    now_ms = int((at or datetime.now(UTC)).timestamp() * 1000)
    sealed = seals.seal(
        key,
        workflow_id=workflow_id,
        update=update,
        update_id=update_id,
        author=author,
        request=request,
        now_ms=now_ms,
    )
    return replace(request, seal=sealed)


def update_name(update: Callable[..., Any] | str) -> str:
    """An update's name from its method (the method's name unless the definition says)."""
    if isinstance(update, str):
        return update
    definition = getattr(update, "__temporal_update_definition", None)
    return str(definition.name) if definition is not None else update.__name__


class SealedHandle:
    """A workflow handle whose updates carry the API's seal for the draft's `author`, dated
    by `env`'s clock (a time-skipping server's time runs ahead of the wall clock)."""

    def __init__(
        self,
        handle: WorkflowHandle[Any, Any],
        env: WorkflowEnvironment | None = None,
        *,
        author: str = "agent",
    ) -> None:
        self.handle, self.env, self.author = handle, env, author

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    async def sealed(self, update: Callable[..., Any] | str, request: Any, update_id: str) -> Any:
        at = await self.env.get_current_time() if self.env is not None else None
        return seal(
            request,
            workflow_id=self.handle.id,
            update=update_name(update),
            update_id=update_id,
            author=self.author,
            at=at,
        )

    async def execute_update(
        self, update: Any, request: Any, *, id: str | None = None, **options: Any
    ) -> Any:
        update_id = id or uuid.uuid4().hex
        sealed = await self.sealed(update, request, update_id)
        return await self.handle.execute_update(update, sealed, id=update_id, **options)

    async def start_update(
        self, update: Any, request: Any, *, id: str | None = None, **options: Any
    ) -> Any:
        update_id = id or uuid.uuid4().hex
        sealed = await self.sealed(update, request, update_id)
        return await self.handle.start_update(update, sealed, id=update_id, **options)

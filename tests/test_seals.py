"""The seal covers everything the workflow believes (`lifecycle.seals`), field by field.

`tests/test_hostile_clients.py` sends forged and replayed seals to a real workflow; each of
those fails for a reason of its own (another key, another draft, an old seal), so none of
them would notice a seal that left the request's fields out. Here a request is sealed as
the API seals it, then one thing is changed, whatever it is, and the seal must not verify:
a reviewer's `request_changes` turned into `approve`, roles added, another stage, another
version, another text, another publishing time."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lifecycle import seals
from workflows import contracts
from workflows.contracts import (
    Actor,
    DecisionRequest,
    EditRequest,
    PublishRequest,
    SubmitRequest,
    WithdrawRequest,
)

KEY = "k" * 32
NOW_MS = 1_780_000_000_000
CLAIMS = {"workflow_id": "draft-7", "update": "decide", "update_id": "u9"}
REQUESTS: list[Any] = [
    DecisionRequest(
        actor=Actor(username="cara", roles=["comms"]),
        stage="comms",
        decision="request_changes",
        version=1,
        comment="too blunt",
    ),
    EditRequest(actor=Actor(username="agent", roles=["agent"]), body="Hello", expected_version=2),
    SubmitRequest(actor=Actor(username="agent", roles=["agent"]), version=2),
    PublishRequest(
        actor=Actor(username="pat", roles=["publisher"]),
        at=datetime(2026, 12, 3, 9, tzinfo=UTC),
        version=3,
    ),
    WithdrawRequest(actor=Actor(username="agent", roles=["agent"])),
]


def sealed(request: Any) -> Any:
    seal = seals.seal(KEY, request=request, author="agent", now_ms=NOW_MS, **CLAIMS)
    return dataclasses.replace(request, seal=seal)


def verify(request: Any, **claims: Any) -> seals.Seal:
    return seals.verify([KEY], request, now_ms=NOW_MS, **{**CLAIMS, **claims})


def other(value: Any) -> Any:
    """A value of the same kind that differs from `value`."""
    if isinstance(value, bool) or value is None:
        return "changed"
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return {"request_changes": "approve", "comms": "legal"}.get(value, value + "x")
    if isinstance(value, datetime):
        return value - timedelta(hours=8)
    if isinstance(value, list):
        return [*value, "legal"]
    raise AssertionError(f"no other value for {value!r}")


def changes(request: Any) -> list[tuple[str, Any]]:
    """Each field of `request` (the actor's own fields too) changed alone: (its name, the
    request with it changed)."""
    found = []
    for field in dataclasses.fields(request):
        if field.name == "seal":
            continue
        value = getattr(request, field.name)
        if dataclasses.is_dataclass(value):
            for inner in dataclasses.fields(value):
                changed = dataclasses.replace(
                    value, **{inner.name: other(getattr(value, inner.name))}
                )
                found.append(
                    (
                        f"{field.name}.{inner.name}",
                        dataclasses.replace(request, **{field.name: changed}),
                    )
                )
        else:
            found.append((field.name, dataclasses.replace(request, **{field.name: other(value)})))
    return found


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_a_sealed_request_with_any_field_changed_is_refused(request_: Any) -> None:
    good = sealed(request_)
    assert verify(good) == good.seal  # as the API sealed it, it verifies
    tampered = changes(good)
    assert tampered, "every request has fields to seal"
    for name, changed in tampered:
        try:
            verify(changed)
        except seals.SealError as refused:
            assert "does not verify" in str(refused), name
        else:
            pytest.fail(f"{name} changed, and the seal still verifies")


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("workflow_id", "draft-8"),
        ("update", "publish"),
        ("update_id", "u10"),
    ],
)
def test_a_seal_for_another_workflow_update_or_id_is_refused(claim: str, value: str) -> None:
    with pytest.raises(seals.SealError, match="does not verify"):
        verify(sealed(REQUESTS[0]), **{claim: value})


def test_a_seal_whose_own_date_or_author_was_changed_is_refused() -> None:
    good = sealed(REQUESTS[0])
    for changed in (
        dataclasses.replace(good.seal, issued_ms=good.seal.issued_ms + 1),
        dataclasses.replace(good.seal, author="mallory"),
    ):
        with pytest.raises(seals.SealError, match="does not verify"):
            verify(dataclasses.replace(good, seal=changed))


def test_every_sealed_request_is_tried_here() -> None:
    """A request type added to the contracts with a seal is added to `REQUESTS` too."""
    sealed_types = {
        kind
        for kind in vars(contracts).values()
        if dataclasses.is_dataclass(kind)
        and isinstance(kind, type)
        and "seal" in {f.name for f in dataclasses.fields(kind)}
    }
    assert sealed_types == {type(request) for request in REQUESTS}

"""What the API and the worker send through Temporal (`workflows.payloads`): written without
the fields that hold their defaults, read back as the same values; a payload written in
full (an earlier release, or a client on Temporal's default converter) reads the same."""

from __future__ import annotations

import dataclasses
import inspect
import json
import types
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from temporalio.converter import DataConverter, JSONPlainPayloadConverter

from workflows import background_contracts, contracts
from workflows.contracts import Acted, Actor, DecisionRequest, Recorded, Submitted
from workflows.payloads import DATA_CONVERTER

COMPACT = DATA_CONVERTER.payload_converter
FULL = DataConverter.default.payload_converter
# Every dataclass the workflows and activities exchange: a draft's, and the background
# workflows'.
CONTRACTS = [
    cls
    for module in (contracts, background_contracts)
    for _, cls in inspect.getmembers(module, inspect.isclass)
    if dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
]
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def _strategy(cls: type) -> st.SearchStrategy[Any]:
    """`cls` built from its fields' types (`_of`)."""
    hints = typing.get_type_hints(cls)
    fields = {field.name: _of(hints[field.name]) for field in dataclasses.fields(cls) if field.init}
    return st.builds(cls, **fields)


def _of(hint: Any) -> st.SearchStrategy[Any]:
    """Values of `hint`: a contract built field by field, JSON where it says `Any`."""
    if hint is Any:
        return JSON
    if hint in CONTRACTS:
        return st.deferred(lambda: _strategy(hint))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_of(arg) for arg in args))
    if origin is list:
        return st.lists(_of(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(_of(args[0]), _of(args[1]), max_size=3)
    return st.from_type(hint)


def _json(payload: Any) -> dict[str, Any]:
    value = json.loads(payload.data)
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize("cls", CONTRACTS, ids=lambda cls: cls.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_contract_reads_back_the_same_however_it_was_written(
    cls: type, data: st.DataObject
) -> None:
    value = data.draw(_strategy(cls))
    compact = COMPACT.to_payloads([value])
    full = FULL.to_payloads([value])
    from_compact = COMPACT.from_payloads(compact, [cls])[0]
    from_full = COMPACT.from_payloads(full, [cls])[0]
    # Compared as written (a float NaN is unequal to itself, its JSON is not).
    assert COMPACT.to_payloads([from_compact]) == compact
    assert COMPACT.to_payloads([from_full]) == compact
    # An older worker, on the default converter, reads the compact form the same.
    assert FULL.to_payloads([FULL.from_payloads(compact, [cls])[0]]) == full
    assert len(compact[0].data) <= len(full[0].data)


def test_a_field_at_its_default_is_not_written_and_any_other_value_is() -> None:
    request = DecisionRequest(actor=Actor(username="comms", roles=["comms"]), stage="comms",
                              decision="approve", version=1)  # fmt: skip
    assert _json(COMPACT.to_payloads([request])[0]) == {
        "actor": {"username": "comms", "roles": ["comms"]},
        "stage": "comms", "decision": "approve", "version": 1,
    }  # fmt: skip
    commented = dataclasses.replace(request, comment="")  # not None: written
    assert _json(COMPACT.to_payloads([commented])[0])["comment"] == ""
    assert _json(COMPACT.to_payloads([Recorded(status="applied")])[0]) == {"status": "applied"}
    assert _json(COMPACT.to_payloads([Submitted(blocked=False, ruleset_version="v")])[0]) == {
        "blocked": False, "ruleset_version": "v",
    }  # fmt: skip
    # A required field is written even when it holds what another field's default would.
    acted = Acted(status="approved", stage=None, version=1)
    assert _json(COMPACT.to_payloads([acted])[0])["stage"] is None


def test_a_default_that_is_a_value_is_written_so_a_later_release_may_change_it() -> None:
    @dataclasses.dataclass
    class Flagged:
        level: int = 0
        mode: str = "hold"
        tags: list[str] = dataclasses.field(default_factory=list)
        note: str | None = None
        fallback: str | None = "x"  # None here is a value: the default is not

    assert _json(COMPACT.to_payloads([Flagged()])[0]) == {"level": 0, "mode": "hold",
                                                          "fallback": "x"}  # fmt: skip
    assert _json(COMPACT.to_payloads([Flagged(fallback=None)])[0])["fallback"] is None
    assert "tags" in _json(COMPACT.to_payloads([Flagged(tags=["a"])])[0])


# Temporal's own reading of a JSON payload (`value_to_type`), the reference ours matches.
REFERENCE = JSONPlainPayloadConverter()


@pytest.mark.parametrize("cls", CONTRACTS, ids=lambda cls: cls.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_contract_reads_as_temporal_reads_it(cls: type, data: st.DataObject) -> None:
    """Ours reads a dataclass with pydantic's compiled validator (`workflows.payloads`);
    Temporal's reading is the reference, for the compact and the full form."""
    value = data.draw(_strategy(cls))
    for payload in (COMPACT.to_payloads([value])[0], FULL.to_payloads([value])[0]):
        ours = COMPACT.from_payloads([payload], [cls])[0]
        theirs = REFERENCE.from_payload(payload, cls)
        assert type(ours) is cls
        # Compared as written (NaN), and field by field for the types JSON would blur.
        assert FULL.to_payloads([ours]) == FULL.to_payloads([theirs])
        assert _types(ours) == _types(theirs)


def _types(value: Any) -> Any:
    """The shape of `value` as types: a dataclass's fields, a list's or dict's items."""
    if dataclasses.is_dataclass(value):
        return (type(value), [_types(getattr(value, f.name)) for f in dataclasses.fields(value)])
    if isinstance(value, list | tuple):
        return (type(value), [_types(item) for item in value])
    if isinstance(value, dict):
        return (type(value), {key: _types(item) for key, item in value.items()})
    return type(value)


@pytest.mark.parametrize("cls", CONTRACTS, ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_payload_ours_accepts_temporal_accepts_alike(cls: type, data: st.DataObject) -> None:
    """A client that can reach Temporal may send any JSON: a field of a well-formed
    payload replaced by any JSON value, dropped, or joined by one the class lacks. What
    ours reads, Temporal's reading reads to the same value; what ours refuses, it refuses
    with Temporal's `TypeError`. (Ours refuses more: what Temporal coerces, `1.5` or
    `true` for an int, a string for a list.)"""
    written = json.loads(FULL.to_payloads([data.draw(_strategy(cls))])[0].data)
    names = sorted(written)
    change = data.draw(st.sampled_from(["replace", "drop", "add"]) if names else st.just("add"))
    if change == "add":
        written[data.draw(st.text(max_size=6))] = data.draw(JSON)
    else:
        name = data.draw(st.sampled_from(names))
        if change == "drop":
            del written[name]
        else:
            written[name] = data.draw(JSON | st.floats() | st.text())
    payload = FULL.to_payloads([written])[0]
    try:
        ours = COMPACT.from_payloads([payload], [cls])[0]
    except TypeError:
        return
    theirs = REFERENCE.from_payload(payload, cls)
    assert FULL.to_payloads([ours]) == FULL.to_payloads([theirs])
    assert _types(ours) == _types(theirs)

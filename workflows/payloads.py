"""How the API and the worker write what they send through Temporal: JSON, as Temporal's
default converter writes it, less every dataclass field that holds nothing (`None`, or an
empty list or dict where that is its default).

Every update's request and answer, every local activity's result and every activity's
input is kept in the draft's workflow history, for as long as the history is kept, and
read back on every replay. Written in full, much of a draft's history was `null`, `[]` and
`{}` (a decision's empty comment, a recording's absent failure, a submission's findings
when none): about a tenth of its bytes (issue 24). Temporal's decoder fills a field a
payload does not name from the dataclass's default, so the two ways of writing read alike:
a payload written in full (an earlier release, a client with the default converter) and one
written compactly decode to equal values (`tests/test_payloads.py`).

Only emptiness is left out, never a value: a default such as `version = 1` or
`late_approval = "hold"` is written, so a later release that changes a default still reads
every stored history as it was written.

A dataclass is read by pydantic's compiled validator (`TypeAdapter`, strict), made once per
class: Temporal's own reading looks the class's type hints up again for every payload and
walks it in Python, 84 µs a payload against 6, and 14% of the worker's CPU in
`bench/lifecycle.py --profile` (issue 24). It reads every payload Temporal's reading
accepts of what we write to the same values, and refuses what Temporal's would coerce
(`1.5` or `true` for an int, a string for a list): what it accepts, Temporal's reading
accepts alike (`tests/test_payloads.py`). A refusal is a `TypeError`, as Temporal's.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from pydantic import TypeAdapter, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    AdvancedJSONEncoder,
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)


class CompactEncoder(AdvancedJSONEncoder):
    """A dataclass as its fields, less those that hold nothing and default to nothing (a
    nested one is encoded the same way, when `json` meets it); anything else as Temporal
    encodes it."""

    def default(self, o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {
                field.name: value
                for field in dataclasses.fields(o)
                if not _absent(field, value := getattr(o, field.name))
            }
        return super().default(o)


def _absent(field: dataclasses.Field[Any], value: Any) -> bool:
    """`value` is nothing, and nothing is what the field holds when a payload omits it."""
    if value is None:
        return field.default is None
    factory = field.default_factory
    return (factory is list and value == [] and type(value) is list) or (
        factory is dict and value == {} and type(value) is dict
    )


class CompactJSONConverter(JSONPlainPayloadConverter):
    """Temporal's JSON converter, writing compactly and reading a dataclass compiled."""

    def __init__(self) -> None:
        super().__init__(encoder=CompactEncoder)

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        if type_hint is None or not dataclasses.is_dataclass(type_hint):
            return super().from_payload(payload, type_hint)
        try:
            return _reader(type_hint).validate_json(payload.data, strict=True)
        except ValidationError as err:
            raise TypeError(f"Failed converting to {type_hint.__name__}: {err}") from err


@functools.lru_cache(maxsize=256)
def _reader(cls: type) -> TypeAdapter[Any]:
    """The contracts are a few dozen classes, and the workflows import them passed through
    the sandbox (one class each for the life of the process); bounded all the same, for a
    module the sandbox would import afresh for every run."""
    return TypeAdapter(cls)


class CompactPayloadConverter(CompositePayloadConverter):
    """Temporal's default converters, in its order, with the JSON one compact."""

    def __init__(self) -> None:
        super().__init__(*(
            CompactJSONConverter()
            if isinstance(converter, JSONPlainPayloadConverter) else converter
            for converter in DefaultPayloadConverter.default_encoding_payload_converters
        ))  # fmt: skip


DATA_CONVERTER = dataclasses.replace(
    DataConverter.default, payload_converter_class=CompactPayloadConverter
)

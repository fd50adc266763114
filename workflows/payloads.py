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
"""

from __future__ import annotations

import dataclasses
from typing import Any

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


class CompactPayloadConverter(CompositePayloadConverter):
    """Temporal's default converters, in its order, with the JSON one compact."""

    def __init__(self) -> None:
        super().__init__(*(
            JSONPlainPayloadConverter(encoder=CompactEncoder)
            if isinstance(converter, JSONPlainPayloadConverter) else converter
            for converter in DefaultPayloadConverter.default_encoding_payload_converters
        ))  # fmt: skip


DATA_CONVERTER = dataclasses.replace(
    DataConverter.default, payload_converter_class=CompactPayloadConverter
)

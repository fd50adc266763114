"""How the API and the worker write what they send through Temporal: JSON, as Temporal's
default converter writes it, less every dataclass field that holds its default.

Every update's request and answer, every local activity's result and every activity's
input is kept in the draft's workflow history, for as long as the history is kept, and
read back on every replay. Written in full, most of a draft's history was `null`, `[]` and
`{}` (a decision's empty comment, a recording's absent failure, a submission's findings
when none): about a tenth of its bytes (issue 24). Temporal's decoder fills a field a
payload does not name from the dataclass's default, so the two ways of writing read alike:
a payload written in full (an earlier release, a client with the default converter) and one
written compactly decode to equal values (`tests/test_payloads.py`).
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
    """A dataclass as the fields whose values differ from their defaults (a nested one is
    encoded the same way, when `json` meets it); anything else as Temporal encodes it."""

    def default(self, o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {
                field.name: value
                for field in dataclasses.fields(o)
                if not _is_default(field, value := getattr(o, field.name))
            }
        return super().default(o)


def _is_default(field: dataclasses.Field[Any], value: Any) -> bool:
    if field.default is not dataclasses.MISSING:
        default = field.default
    elif field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    else:
        return False  # a required field is always written
    # Same type too: `False == 0`, yet a field declared `int | bool` keeps what it holds.
    return type(value) is type(default) and bool(value == default)


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

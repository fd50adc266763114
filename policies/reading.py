"""Helpers for reading a rule set's YAML: entries, terms, rule ids, stages, severities,
each refusing a bad value with its line (`policies.ruleset_yaml`)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from policies.lexicon import fold_text
from policies.results import SEVERITIES, STAGES
from policies.ruleset_yaml import Mapping, Reader, RuleSetError


def group(entry: Any, line: int, where: str, known: set[str]) -> Reader:
    if not isinstance(entry, Mapping):
        raise RuleSetError(f"each {where} entry must be a mapping", line)
    return Reader(entry, where, known)


def terms(group: Reader) -> Iterable[str]:
    terms = group.texts("terms")
    if not terms:
        raise group.fail("terms", "must list at least one term")
    for term in terms:
        text = " ".join(term.split())
        if not fold_text(text):
            raise group.fail("terms", f"has {term!r}, which has no letters or digits")
        yield text


def slug(term: str) -> str:
    """A rule id's last part: `0% APR` -> `0-apr`, `we'll cover` -> `we-ll-cover`."""
    plain = unicodedata.normalize("NFKD", term.casefold()).encode("ascii", "ignore").decode()
    return (
        re.sub(r"[^a-z0-9]+", "-", plain).strip("-")
        or hashlib.sha256(term.encode()).hexdigest()[:8]
    )


def stages(reader: Reader, key: str) -> list[str]:
    value = reader.data.get(key)
    if not isinstance(value, list) or not value or any(v not in STAGES for v in value):
        raise reader.fail(key, f"must be a non-empty list of stages from {list(STAGES)}")
    if "comms" not in value:
        raise reader.fail(key, "must include comms: it approves every reply")
    return sorted({str(v) for v in value}, key=STAGES.index)


def severity(reader: Reader, key: str, default: str) -> str:
    value = reader.data.get(key, default)
    if value not in SEVERITIES:
        raise reader.fail(key, f"is {value!r}, not one of {', '.join(SEVERITIES)}")
    return str(value)

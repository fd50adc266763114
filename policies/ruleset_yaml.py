"""Reading a rule file so that every problem can name its line.

PyYAML's safe loader, with mappings and lists that remember the line of each key and item.
A rule file is written by people and uploaded by an admin: "line 14: severity 'rout:legal'
is not block, warn or route:<stage>" saves them a search.
"""

from __future__ import annotations

from typing import Any

import yaml


class RuleSetError(ValueError):
    """The rule file is not valid: `problem` says why and `line` (1-based) where, if known."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        self.problem, self.line = problem, line
        super().__init__(f"line {line}: {problem}" if line else problem)


class Mapping(dict[Any, Any]):
    """A YAML mapping; `line` is where it starts, `lines[key]` where each key is."""

    line: int
    lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.lines.get(key, self.line)


class Sequence(list[Any]):
    """A YAML list; `line` is where it starts, `lines[i]` where each item is."""

    line: int
    lines: list[int]


# LibYAML's parser where it is installed (a 10,000-term rule set parses several times
# faster); the constructors below are ours either way, and both keep each node's line.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> Mapping:
    loader.flatten_mapping(node)
    result = Mapping()
    result.line, result.lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str | int | float | bool) or key is None:
            raise RuleSetError("a key must be a plain word", line)
        if key in result:
            raise RuleSetError(f"{key!r} appears twice", line)
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = line
    return result


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> Sequence:
    result = Sequence(loader.construct_object(item, deep=True) for item in node.value)
    result.line = node.start_mark.line + 1
    result.lines = [item.start_mark.line + 1 for item in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load(source: str) -> Mapping:
    try:
        data = yaml.load(source, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        # LibYAML puts a problem at the end of the input one line past the last.
        line = min(mark.line + 1, source.count("\n") + 1) if mark else None
        raise RuleSetError(f"not valid YAML: {problem}", line) from exc
    except yaml.YAMLError as exc:
        raise RuleSetError(f"not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise RuleSetError("a rule set is a mapping with name, routes, channels, lexicon...", 1)
    return data


class Reader:
    """Typed access to one mapping of the rule file, raising `RuleSetError` at the line."""

    def __init__(self, data: Mapping, where: str, known: set[str]) -> None:
        self.data, self.where = data, where
        for key in data:
            if key not in known:
                raise RuleSetError(
                    f"{self._name(key)} is not a known setting (known: {', '.join(sorted(known))})",
                    data.line_of(key),
                )

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else str(key)

    def line(self, key: str) -> int:
        return self.data.line_of(key)

    def fail(self, key: str, problem: str) -> RuleSetError:
        return RuleSetError(f"{self._name(key)} {problem}", self.line(key))

    def has(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be a non-empty text")
        return value

    def count(self, key: str, default: int | None = None) -> int | None:
        value = self.data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(key, "must be a whole number, 0 or more")
        return value

    def texts(self, key: str, default: list[str] | None = None) -> list[str]:
        value = self.data.get(key, default if default is not None else [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(key, "must be a list of texts")
        return [str(v) for v in value]

    def mapping(self, key: str, known: set[str] | None = None) -> Reader | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.fail(key, "must be a mapping")
        return Reader(value, self._name(key), known if known is not None else set(value))

    def items(self, key: str) -> list[tuple[int, Any]]:
        """A list's items, each with its line."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, Sequence):
            raise self.fail(key, "must be a list")
        return list(zip(value.lines, value, strict=True))

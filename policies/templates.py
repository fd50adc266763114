"""Pre-approved reply templates: `templates/replies/*.j2`, each a Jinja2 text with YAML
front matter naming its id, title, channels, owner and typed variables.

They render in a `SandboxedEnvironment` with `StrictUndefined`: a template cannot reach
Python internals and a missing variable is an error, not an empty string. Values are
checked against their declared type before rendering. The spans where values landed in
the text are kept, so the policy engine can tell the template's own (pre-approved) wording
from what the agent filled in (`policies.engine.TemplateBasis`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

REPLIES_DIR = Path(__file__).resolve().parent.parent / "templates" / "replies"
_FRONT = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.DOTALL)
# Private-use characters that bracket each value while rendering, then are taken out.
_OPEN, _CLOSE = "\ue000", "\ue001"
TYPES = ("text", "number", "choice")


class TemplateProblem(ValueError):
    """A template file, or the values given to one, is not valid; `problems` says how."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Variable:
    name: str
    type: str  # text, number or choice
    label: str = ""
    max_length: int = 80  # text
    minimum: int = 0  # number
    maximum: int = 1_000_000  # number
    options: tuple[str, ...] = ()  # choice

    def coerce(self, value: Any) -> str | int:
        if self.type == "number":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("must be a whole number")
            if not self.minimum <= value <= self.maximum:
                raise ValueError(f"must be between {self.minimum} and {self.maximum}")
            return value
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty text")
        if self.type == "choice" and value not in self.options:
            raise ValueError(f"must be one of {list(self.options)}")
        if len(value) > self.max_length or "\n" in value or _OPEN in value or _CLOSE in value:
            raise ValueError(f"must be one line of at most {self.max_length} characters")
        return value.strip()

    def describe(self) -> dict[str, Any]:
        shape: dict[str, Any] = {"name": self.name, "type": self.type, "label": self.label}
        if self.type == "number":
            shape |= {"minimum": self.minimum, "maximum": self.maximum}
        elif self.type == "choice":
            shape["options"] = list(self.options)
        else:
            shape["max_length"] = self.max_length
        return shape


@dataclass(frozen=True)
class Rendered:
    template_id: str
    template_version: str
    body: str
    variable_spans: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ReplyTemplate:
    id: str
    title: str
    channels: tuple[str, ...]
    owner: str
    variables: dict[str, Variable]
    text: str
    version: str
    _compiled: Any = field(repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "version": self.version,
            "channels": list(self.channels),
            "owner": self.owner,
            "variables": [v.describe() for v in self.variables.values()],
            "text": self.text,
        }

    def render(self, values: dict[str, Any]) -> Rendered:
        problems = [
            f"{name}: not a variable of {self.id}" for name in values.keys() - self.variables.keys()
        ]
        problems += [f"{name}: required" for name in self.variables.keys() - values.keys()]
        typed: dict[str, Any] = {}
        for name, variable in self.variables.items():
            if name not in values:
                continue
            try:
                value = variable.coerce(values[name])
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                continue
            typed[name] = f"{_OPEN}{value}{_CLOSE}" if isinstance(value, str) else value
        if problems:
            raise TemplateProblem(problems)
        try:
            marked = self._compiled.render(typed).strip()
        except TemplateError as exc:
            raise TemplateProblem([f"{self.id} could not be rendered: {exc}"]) from exc
        body, spans = _unmark(marked)
        return Rendered(self.id, self.version, body, spans)


def _unmark(marked: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    length, opened = 0, None
    for char in marked:
        if char == _OPEN:
            opened = length
        elif char == _CLOSE and opened is not None:
            spans.append((opened, length))
            opened = None
        else:
            out.append(char)
            length += 1
    return "".join(out), tuple(spans)


def own_text(
    body: str, rendered: str, variable_spans: tuple[tuple[int, int], ...]
) -> list[tuple[int, int]] | None:
    """Where the template's own text (everything outside its variables) lies in `body`, or
    None if any of it was changed.

    A template draft keeps its pre-approval only while its own words stand exactly as
    rendered, in order, with anything at all in place of each variable: "should not have
    been" edited to "should have been" reverses the meaning in eight characters, so no edit
    distance is small enough. Each piece of own text is placed at its leftmost possible
    place after the one before, which finds a placement whenever there is one.
    """
    pieces, start = [], 0
    for begin, end in sorted(variable_spans):
        pieces.append(rendered[start:begin])
        start = end
    pieces.append(rendered[start:])
    if len(pieces) == 1:
        return [(0, len(body))] if body == rendered else None
    first, *middle, last = pieces
    tail = len(body) - len(last)
    if not body.startswith(first) or not body.endswith(last) or tail < len(first):
        return None
    placed, at = [(0, len(first))], len(first)
    for piece in middle:
        found = body.find(piece, at, tail)
        if found < 0:
            return None
        placed.append((found, found + len(piece)))
        at = found + len(piece)
    placed.append((tail, len(body)))
    return placed


class Catalogue:
    """Every template in a folder, parsed and compiled once."""

    def __init__(self, templates: dict[str, ReplyTemplate]) -> None:
        self.templates = templates

    @classmethod
    def load(cls, folder: Path | None = None) -> Catalogue:
        env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        templates: dict[str, ReplyTemplate] = {}
        for path in sorted((folder or REPLIES_DIR).glob("*.j2")):
            template = parse(path.read_text(), env, where=path.name)
            if template.id in templates:
                raise TemplateProblem([f"{path.name}: id {template.id!r} is used twice"])
            templates[template.id] = template
        return cls(templates)

    def get(self, template_id: str) -> ReplyTemplate | None:
        return self.templates.get(template_id)

    def for_channel(self, channel: str | None) -> list[ReplyTemplate]:
        return [t for t in self.templates.values() if channel is None or channel in t.channels]


def _variable(name: str, spec: Any, where: str) -> Variable:
    kind = spec.get("type", "text") if isinstance(spec, dict) else None
    if kind not in TYPES:
        raise TemplateProblem([f"{where}: variable {name} has type {kind!r}, not {TYPES}"])
    try:
        return Variable(
            name=name,
            type=kind,
            label=str(spec.get("label", name)),
            max_length=int(spec.get("max_length", 80)),
            minimum=int(spec.get("minimum", 0)),
            maximum=int(spec.get("maximum", 1_000_000)),
            options=tuple(str(o) for o in spec.get("options", ())),
        )
    except (TypeError, ValueError) as exc:
        raise TemplateProblem([f"{where}: variable {name}: {exc}"]) from exc


def parse(source: str, env: SandboxedEnvironment, *, where: str) -> ReplyTemplate:
    match = _FRONT.match(source)
    if match is None:
        raise TemplateProblem([f"{where}: starts with front matter between two --- lines"])
    try:
        front = yaml.safe_load(match[1])
    except yaml.YAMLError as exc:
        raise TemplateProblem([f"{where}: the front matter is not valid YAML: {exc}"]) from exc
    if not isinstance(front, dict):
        raise TemplateProblem([f"{where}: the front matter is a mapping"])
    missing = [k for k in ("id", "title", "channels", "owner") if not front.get(k)]
    if missing:
        raise TemplateProblem([f"{where}: front matter needs {', '.join(missing)}"])
    variables = {}
    declared = front.get("variables") or {}
    if not isinstance(declared, dict):
        raise TemplateProblem([f"{where}: variables is a mapping of name to type"])
    for name, spec in declared.items():
        variables[str(name)] = _variable(str(name), spec or {}, where)
    try:
        compiled = env.from_string(match[2])
    except TemplateError as exc:
        raise TemplateProblem([f"{where}: {exc}"]) from exc
    return ReplyTemplate(
        id=str(front["id"]),
        title=str(front["title"]),
        channels=tuple(str(c) for c in front["channels"]),
        owner=str(front["owner"]),
        variables=variables,
        text=match[2].strip(),
        version=hashlib.sha256(source.encode()).hexdigest()[:16],
        _compiled=compiled,
    )

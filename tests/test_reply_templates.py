"""Reply templates: front matter, typed variables, the sandbox and strict undefined."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.engine import RuleSet, TemplateBasis
from policies.templates import Catalogue, TemplateProblem, own_text


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


HEAD = "---\nid: t\ntitle: T\nchannels: [x]\nowner: comms\nvariables:\n  name: {type: text}\n---\n"


def test_every_shipped_template_renders_and_passes_the_shipped_checks() -> None:
    rules = RuleSet.load()
    catalogue = Catalogue.load()
    assert len(catalogue.templates) >= 5
    for template in catalogue.templates.values():
        values: dict[str, object] = {}
        for variable in template.variables.values():
            if variable.type == "choice":
                values[variable.name] = variable.options[0]
            elif variable.type == "number":
                values[variable.name] = variable.maximum
            else:
                values[variable.name] = "Alexandra"
        rendered = template.render(values)
        for channel in template.channels:
            result = rules.check(
                rendered.body,
                channel,
                template=TemplateBasis(rendered.body, rendered.variable_spans),
            )
            assert not result.blocked, (template.id, channel, result.findings)
            assert result.template == "pre_approved"


def test_values_are_located_in_the_text(tmp_path: Path) -> None:
    write(tmp_path, "t.j2", HEAD + "Hi {{ name }}! Bye {{ name | upper }}.")
    rendered = Catalogue.load(tmp_path).templates["t"].render({"name": "Jo"})
    assert rendered.body == "Hi Jo! Bye JO."
    assert [rendered.body[s:e] for s, e in rendered.variable_spans] == ["Jo", "JO"]
    assert rendered.template_version and rendered.template_id == "t"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("Hi {{ nam }}", "could not be rendered"),  # StrictUndefined: a typo is an error
        ("{{ name.__class__.__mro__ }}", "could not be rendered"),  # the sandbox
        ("{{ ''.__class__.__subclasses__() }}", "could not be rendered"),
    ],
)
def test_the_sandbox_and_strict_undefined(tmp_path: Path, text: str, problem: str) -> None:
    write(tmp_path, "t.j2", HEAD + text)
    with pytest.raises(TemplateProblem, match=problem):
        Catalogue.load(tmp_path).templates["t"].render({"name": "Jo"})


@pytest.mark.parametrize(
    "text, problem",
    [
        ("no front matter", "front matter"),
        ("---\nid: t\n---\nHi", "needs title, channels, owner"),
        (HEAD.replace("type: text", "type: date") + "x", "type 'date'"),
        (HEAD + "{% if %}", "t.j2"),
        ("---\nid: [x\n---\nHi", "not valid YAML"),
        (HEAD.replace("{type: text}", "{type: number, maximum: lots}") + "x", "variable name"),
        (HEAD.replace("  name: {type: text}", "  - name") + "x", "variables is a mapping"),
    ],
)
def test_a_bad_template_file_is_refused_at_start(tmp_path: Path, text: str, problem: str) -> None:
    write(tmp_path, "t.j2", text)
    with pytest.raises(TemplateProblem, match=problem):
        Catalogue.load(tmp_path)


@pytest.mark.parametrize(
    ("body", "placed"),
    [
        ("Hi Jo, bye Al.", [(0, 3), (5, 11), (13, 14)]),  # as rendered
        ("Hi Joanne, bye Alexander the Great.", [(0, 3), (9, 15), (34, 35)]),  # values changed
        ("Hi , bye .", [(0, 3), (3, 9), (9, 10)]),  # values emptied
        ("Hi Jo, bye, bye Al.", [(0, 3), (10, 16), (18, 19)]),  # own words inside a value
        ("Hi Jo, bye Al!", None),  # the last character
        ("Hi Jo, by Al.", None),  # a middle piece
        ("Hey Jo, bye Al.", None),  # the first piece
        ("Hi Jo, bye Al. PS: sorry!", None),  # added after the template's end
        ("Hi Jo.", None),  # pieces missing
        (", bye Hi .", None),  # out of order
    ],
)
def test_the_templates_own_words_must_stand_exactly(
    body: str, placed: list[tuple[int, int]] | None
) -> None:
    rendered, spans = "Hi Jo, bye Al.", ((3, 5), (11, 13))
    assert own_text(body, rendered, spans) == placed
    if placed is not None:  # what it placed is the template's own text, in order
        pieces = ["Hi ", ", bye ", "."]
        assert [body[s:e] for s, e in placed] == pieces


def test_a_template_without_variables_must_be_sent_as_it_is() -> None:
    assert own_text("Thanks!", "Thanks!", ()) == [(0, 7)]
    assert own_text("Thanks!!", "Thanks!", ()) is None

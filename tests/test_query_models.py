"""`api.query_models` reads a query string as FastAPI reads the same model, and documents it
as FastAPI does: held to FastAPI itself, on a route of each kind, for any query string."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import pytest
from fastapi import Depends, FastAPI, Query
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from api import openapi, problems, query_models
from api.app import create_app
from api.routes.posts import QueueQuery
from lifecycle.words import PostStatus, QueueOrder
from records.fields import Channel, Priority


def _twin_app() -> FastAPI:
    """The same model read by FastAPI (`/fastapi`) and by `query_of` (`/ours`), with the
    API's own rendering of errors."""
    app = FastAPI()
    problems.install(app)

    @app.get("/fastapi")
    async def by_fastapi(query: Annotated[QueueQuery, Query()]) -> dict[str, Any]:
        return query.model_dump(mode="json")

    @app.get("/ours", openapi_extra=query_models.documented(QueueQuery))
    async def by_ours(
        query: Annotated[QueueQuery, Depends(query_models.query_of(QueueQuery))],
    ) -> dict[str, Any]:
        return query.model_dump(mode="json")

    return app


CLIENT = TestClient(_twin_app())

# Names the model has, one it has not, and values of every kind: valid ones, out of range,
# malformed, empty, and text no field takes.
NAMES = [*QueueQuery.model_fields, "unknown", "Limit", "limit[]"]
VALUES = st.one_of(
    st.sampled_from(
        [*(s.value for s in PostStatus), *(c.value for c in Channel), *(p.value for p in Priority),
         *(o.value for o in QueueOrder), "", "0", "1", "50", "200", "201", "-3", "1.5", "true",
         "false", "yes", "en", "EN", "billing", "ana", "a b", "abc=", "==", "ana@example"]
    ),
    st.text(max_size=12),
)  # fmt: skip


@pytest.mark.long(12)
@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=6))
def test_any_query_string_is_read_as_fastapi_reads_it(pairs: list[tuple[str, str]]) -> None:
    """The same status and the same body: the model's values, or the 422 with each error's
    `loc`, message and type. A repeated parameter, an unknown one, and empty values
    included."""
    query = urlencode(pairs)
    theirs = CLIENT.get(f"/fastapi?{query}")
    ours = CLIENT.get(f"/ours?{query}")
    assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json()), query


def test_a_bad_limit_is_a_422_naming_query_limit() -> None:
    answer = CLIENT.get("/ours?limit=0")
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["errors"]] == [["query", "limit"]]


def test_the_parameters_are_documented_as_fastapi_documents_the_model() -> None:
    document = CLIENT.app.openapi()  # type: ignore[attr-defined]
    theirs = document["paths"]["/fastapi"]["get"]["parameters"]
    ours = document["paths"]["/ours"]["get"]["parameters"]
    assert ours == theirs
    assert {p["name"] for p in ours} == set(QueueQuery.model_fields)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def test_every_schema_the_apps_document_refers_to_is_in_it() -> None:
    """The queue's parameters name enums (the order, say) that only they use: the app's
    document carries their schemas (`api.openapi`), as FastAPI's own reading would."""
    document = create_app().openapi()
    schemas = document["components"]["schemas"]
    missing = {
        ref for ref in _refs(document) if ref.removeprefix("#/components/schemas/") not in schemas
    }
    assert not missing
    assert "QueueOrder" in schemas
    operation = document["paths"]["/api/v1/posts"]["get"]
    assert {p["name"] for p in operation["parameters"]} == set(QueueQuery.model_fields)
    assert (
        operation["responses"]["422"]["content"][problems.PROBLEM_JSON]["schema"]
        == openapi.PROBLEM_REF
    )


class _Repeated(BaseModel):
    tag: list[str] | None = None


class _Aliased(BaseModel):
    kind: str | None = Field(default=None, alias="type")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = 50


@pytest.mark.parametrize("model", [_Repeated, _Aliased, _Strict], ids=lambda m: m.__name__)
def test_a_model_read_otherwise_than_fastapi_reads_it_is_refused(model: type[BaseModel]) -> None:
    """A repeated parameter, an alias, or unknown parameters refused: FastAPI reads those
    otherwise than a dict of the query string would, so `query_of` will not take them."""
    with pytest.raises(TypeError):
        query_models.query_of(model)

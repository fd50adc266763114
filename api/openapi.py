"""The OpenAPI document says what the API really sends: errors as application/problem+json.

FastAPI documents its own `HTTPValidationError` as application/json; this replaces every
4xx response of the `/api/v1` operations with the `Problem` shape and adds the error
statuses any operation can answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from api import query_models
from api.problems import PROBLEM_JSON

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
COMMON_ERRORS = {
    "401": "No valid bearer token",
    "403": "The caller lacks the role this needs",
    "404": "No such resource",
    "409": "Conflicts with the resource's current state",
    "413": "Request body too large",
    "422": "The request is not valid; `errors` names each field",
}


UNREADABLE_BODY = "The request body could not be read (say, JSON that is not UTF-8)"


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    line: int | None = Field(default=None, description="in an uploaded file, where (1-based)")


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(default=None, description="with 422 only")


def install(app: FastAPI, prefix: str) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            _document_problems(schema, prefix)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_problems(schema: dict[str, Any], prefix: str) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    for name, component in query_models.COMPONENTS.items():
        components.setdefault(name, component)
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    content = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(prefix):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in COMMON_ERRORS.items():
                responses[status] = {"description": description, "content": content}
            if "requestBody" in operation:
                responses["400"] = {"description": UNREADABLE_BODY, "content": content}

"""A route's query parameters read as one pydantic model, by pydantic alone, and documented
as FastAPI documents such a model.

FastAPI reads a query model (`Annotated[Model, Query()]`) by looking again at each of its
fields' annotations on every request: 54 µs for the queue's eleven, where validating the
same query string with the model takes 1.6 µs. On the API's hottest read (`GET /posts`,
issue 24) that was a twentieth of a page's time. `query_of(Model)` is the dependency that
reads it, with FastAPI's answers: the last of a repeated parameter, unknown parameters
ignored (or refused, as the model says), and a 422 whose errors are FastAPI's, each `loc`
starting at `query`. `documented(Model)` is the route's `openapi_extra`: the parameters
FastAPI writes for that model, taken from FastAPI itself on a route of its own, so the
OpenAPI document is what it was. `tests/test_query_models.py` holds both to FastAPI's own
reading of the same model for any query string.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar, get_args, get_origin

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

# The schemas a documented model's parameters refer to (its enums), which the app's
# document adds to its components (`api.openapi`): FastAPI would have collected them
# from the route.
COMPONENTS: dict[str, Any] = {}


def query_of(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency: the request's query string as `model`. A coroutine, though it awaits
    nothing: FastAPI would run a plain function on a worker thread.

    Only for what it reads as FastAPI does: a model of one value a parameter, under the
    field's own name, that ignores parameters it does not name. A list (a repeated
    parameter), an alias or another policy for unknown parameters would be read otherwise:
    such a model is refused here."""
    if model.model_config.get("extra", "ignore") != "ignore":
        raise TypeError(f"{model.__name__} must ignore unknown parameters to be read here")
    for name, field in model.model_fields.items():
        if field.alias or field.validation_alias or _many(field.annotation):
            raise TypeError(f"{model.__name__}.{name}: one value under its own name, only")

    async def read(request: Request) -> M:
        try:
            return model.model_validate(dict(request.query_params))
        except ValidationError as exc:
            raise RequestValidationError(
                [
                    {**error, "loc": ("query", *error["loc"])}
                    for error in exc.errors(include_url=False)
                ]
            ) from None

    return read


def _many(annotation: Any) -> bool:
    """A list, set or tuple, alone or in a union (`list[str] | None`)."""
    origin = get_origin(annotation)
    if origin in (list, set, frozenset, tuple) or annotation in (list, set, frozenset, tuple):
        return True
    return any(_many(arg) for arg in get_args(annotation)) if origin is not None else False


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """The `openapi_extra` of a route that reads `model` with `query_of`: its parameters
    as FastAPI documents `Annotated[model, Query()]`."""

    def reads(query: Any) -> None:
        """Never called: FastAPI documents a route of it, and the document is kept."""

    # Given as an object: this module's annotations are strings, which could not name `model`.
    reads.__annotations__ = {"query": Annotated[model, Query()], "return": None}
    twin = APIRouter()
    twin.get("/")(reads)
    document = get_openapi(title="", version="", routes=twin.routes)
    COMPONENTS.update(document.get("components", {}).get("schemas", {}))
    return {"parameters": document["paths"]["/"]["get"]["parameters"]}

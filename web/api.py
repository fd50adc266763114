"""The pages' way to the API: the same JSON API a bearer client uses, called in process
with the signed-in person's token. Every rule (roles, the state machine, separation of
duties) is therefore enforced for a browser exactly as for any client; a page only turns
the API's answers and problems into HTML."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from api import API_PREFIX


class ApiProblem(Exception):
    """The API said no (a problem+json answer): what a page shows the person."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.detail = str(problem.get("detail") or problem.get("title") or f"error {status}")
        super().__init__(self.detail)

    @property
    def findings(self) -> list[dict[str, Any]]:
        found = self.problem.get("findings")
        return found if isinstance(found, list) else []

    @property
    def errors(self) -> list[str]:
        """Field errors as `where: what` lines (from a 422 on the request's shape)."""
        lines = []
        for error in self.problem.get("errors") or []:
            where = ".".join(str(p) for p in error.get("loc", [])[1:]) or "request"
            lines.append(f"{where}: {error.get('msg', '')}")
        return lines


class Api:
    def __init__(
        self, app: FastAPI, token: str | None, client: tuple[str, int] = ("127.0.0.1", 123)
    ) -> None:
        """`client` is the browser's address, which the API sees as the caller's (the
        sign-in throttle counts per address)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=client),
            base_url=f"http://countersign{API_PREFIX}",
            headers=headers,
        )

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer; ApiProblem for any 4xx or 5xx."""
        params = kwargs.pop("params", None)
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v not in (None, "")}
        answer = await self._client.request(method, path, **kwargs)
        if answer.is_error:
            try:
                problem = answer.json()
            except ValueError:
                problem = {"detail": answer.text or answer.reason_phrase}
            raise ApiProblem(answer.status_code, problem if isinstance(problem, dict) else {})
        if answer.status_code == 204 or not answer.content:
            return None
        if answer.headers.get("content-type", "").startswith("application/json"):
            return answer.json()
        return answer.text

    async def get(self, path: str, **params: Any) -> Any:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, **kwargs: Any) -> Any:
        return await self.call("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Any:
        return await self.call("PUT", path, **kwargs)

    async def open(self, path: str, **params: Any) -> httpx.Response:
        """A GET whose body is read as it streams (exports); `close` it when done."""
        request = self._client.build_request("GET", path, params=params)
        return await self._client.send(request, stream=True)

    async def close(self, streamed: httpx.Response | None = None) -> None:
        if streamed is not None:
            await streamed.aclose()
        await self._client.aclose()

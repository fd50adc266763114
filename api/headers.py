"""Security headers on every answer (THREATS: pages cannot be scripted).

Pages get a strict Content-Security-Policy: scripts and styles from this origin only
(htmx is served by the app; no inline script, no inline event handler), no frames of us
anywhere, forms posting only here. Every answer says nosniff and sends no referrer; an
answer to a signed-in request (a session cookie or a bearer token) is never cached.
FastAPI's own /docs and /redoc pages load Swagger's and ReDoc's scripts inline and are left
out of the page policy (they stay behind sign-in in production, issue 20 item 8).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
API_DOCS = ("/docs", "/redoc", "/docs/oauth2-redirect")


class SecurityHeaders:
    def __init__(self, app: ASGIApp, session_cookie: str) -> None:
        self.app = app
        self.session_cookie = session_cookie.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        signed_in = b"authorization" in headers or self.session_cookie + b"=" in headers.get(
            b"cookie", b""
        )
        policy = scope["path"] not in API_DOCS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(ALWAYS)
                if policy:
                    extra.append((b"content-security-policy", CSP.encode()))
                if signed_in:
                    extra.append((b"cache-control", b"no-store"))
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((n, v) for n, v in extra if n not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)

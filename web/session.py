"""The browser's session and its CSRF protection.

- The session cookie holds a token the API issues at sign-in (the same JWT a bearer
  client gets), HttpOnly and SameSite=Strict: page scripts cannot read it and other sites'
  requests do not carry it.
- CSRF: a random `csrf` cookie (also HttpOnly, Strict), and every form and htmx request
  carries `HMAC(jwt secret, cookie)` as the field `csrf_token` or the header
  `X-CSRF-Token`. Another site can neither read the cookie nor compute the HMAC. It works
  before sign-in too, so the sign-in form is covered.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from records.settings import Environment, Settings

SESSION_COOKIE = "countersign_session"
CSRF_COOKIE = "countersign_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class CsrfRefused(Exception):
    """A state-changing request without a valid CSRF token."""


def _secure(settings: Settings) -> bool:
    return settings.environment == Environment.production


def csrf_seed(request: Request) -> str:
    """This browser's CSRF cookie value, made (and set by `remember_seed`) if it has none."""
    seed = request.cookies.get(CSRF_COOKIE)
    if not seed or len(seed) != 43:
        seed = request.state.new_csrf_seed = secrets.token_urlsafe(32)
    return seed


def csrf_token(request: Request, settings: Settings) -> str:
    """What this browser's forms must send back."""
    return _signed(csrf_seed(request), settings)


def _signed(seed: str, settings: Settings) -> str:
    return hmac.new(settings.csrf_secret.encode(), seed.encode(), hashlib.sha256).hexdigest()


def remember_seed(request: Request, response: Response, settings: Settings) -> None:
    seed = getattr(request.state, "new_csrf_seed", None)
    if seed:
        response.set_cookie(
            CSRF_COOKIE, seed, httponly=True, samesite="strict", secure=_secure(settings)
        )


async def check_csrf(request: Request, settings: Settings) -> None:
    """Refuse a state-changing request whose token does not match this browser's cookie."""
    seed = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not seed or not sent:
        raise CsrfRefused("this form has no security token; reload the page and try again")
    if not hmac.compare_digest(_signed(seed, settings), sent):
        raise CsrfRefused("this form's security token does not match; reload the page")


def start(response: Response, token: str, max_age: int, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=_secure(settings),
    )


def end(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")

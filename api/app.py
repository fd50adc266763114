"""The FastAPI app factory. Engines and clients are built in the lifespan, never at import."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import API_PREFIX, openapi, problems
from api.deps import signed_in_only
from api.headers import SecurityHeaders
from api.lifecycle import Lifecycle
from api.limits import BodySizeLimit
from api.metrics import Metrics
from api.policy import Policies
from api.private import PrivateEndpoints
from api.request_log import RequestLog
from api.routes import (
    audit,
    auth,
    channels,
    customers,
    drafts,
    evidence,
    health,
    holds,
    inbound,
    notifications,
    policies,
    posts,
    reports,
    routing,
    templates,
    users,
)
from api.signin import SignInThrottle
from api.standings import Standings
from api.tokens import TokenService
from connectors import egress
from countersign import tracing
from policies.sla import ServiceLevels
from records import gauges, vault
from records.db import Database
from records.settings import Settings, load_settings
from web import pages, session
from workflows.connection import Access, TemporalGateway

# The API's routers for signed-in callers: each route asks who is calling (`signed_in_only`).
SIGNED_IN = (
    users.router,
    posts.router,
    drafts.router,
    evidence.router,
    audit.router,
    holds.router,
    policies.router,
    templates.router,
    notifications.router,
    reports.router,
    channels.router,
    customers.router,
    routing.router,
)


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    temporal: TemporalGateway | None = None,
    traces: tracing.Tracing | None = None,
) -> FastAPI:
    """Build the app. Tests pass their own database, gateway or tracing; production passes
    nothing (and traces when `COUNTERSIGN_OTLP_ENDPOINT` names a collector)."""
    settings = settings or load_settings()
    metrics = Metrics()
    own_traces = traces is None
    traces = traces or tracing.start(settings, "api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        egress.configure(egress.EgressPolicy.of(settings))
        vault.configure(vault.Vault.of(settings))
        owned = database is None
        app.state.database = database or Database(settings.resolved_database_url)
        # This start's own: a client that starts the app twice at once (tests) stops each.
        standings = app.state.standings = Standings(app.state.database)
        standings.start()
        if traces is not None:
            traces.database(app.state.database)
        metrics.read_figures_with(lambda: _figures(app.state.database))
        app.state.sign_in = SignInThrottle(app.state.database, settings.jwt_secret)
        app.state.temporal = temporal or TemporalGateway(
            settings.temporal_address,
            settings.temporal_namespace,
            Access.of(settings),
            interceptors=[traces.temporal()] if traces is not None else [],
        )
        app.state.lifecycle = Lifecycle(
            app.state.temporal,
            settings.task_queue,
            settings.workflow_id_prefix,
            retry_seconds=settings.temporal_retry_seconds,
            action_key=settings.action_key,
        )
        try:
            yield
        finally:
            # A CRM look-up under way writes its answer to the database: it ends before the
            # database closes (each is bounded by the CRM's timeout), not after the app.
            lookups = list(app.state.crm_lookups.values())
            if lookups:
                await asyncio.wait(lookups, timeout=settings.crm_timeout_seconds + 5)
            standings.stop()
            if owned:
                app.state.database.dispose()
            if own_traces and traces is not None:
                traces.shutdown()  # what is buffered goes to the collector

    app = FastAPI(
        title="Countersign",
        version="1.0.0",
        summary="Compliance-first approval of social-media customer-care replies",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.crm_lookups = {}  # customer id -> its CRM look-up under way (api.routes.customers)
    app.state.tokens = TokenService(settings)
    app.state.metrics = metrics
    app.state.policies = Policies(settings.rules_file, settings.reply_templates_dir)
    app.state.service_levels = ServiceLevels.of(settings)
    problems.install(app)
    openapi.install(app, API_PREFIX)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestLog, metrics=metrics)
    if settings.endpoints_private:
        app.add_middleware(PrivateEndpoints, session_cookie=session.SESSION_COOKIE)
    app.add_middleware(SecurityHeaders, session_cookie=session.SESSION_COOKIE)
    if traces is not None:
        traces.app(app)  # outermost: the request's span holds everything below it

    # Routers are included directly on the app, one level deep (FastAPI walks every level
    # of nested routers to match each request).
    app.include_router(auth.router, prefix=API_PREFIX)
    app.include_router(inbound.router, prefix=API_PREFIX)  # signed deliveries, no bearer token
    for routes in SIGNED_IN:
        app.include_router(signed_in_only(routes), prefix=API_PREFIX)
    app.include_router(health.router, prefix=API_PREFIX, include_in_schema=False)
    app.include_router(health.router)
    pages.install(app)  # the web UI: a client of the routes above, in process
    return app


def _figures(database: Database) -> gauges.Figures:
    """The product's figures for a scrape of `/metrics` (`api.metrics`)."""
    with tracing.untraced(), database.engine.connect() as connection:
        return gauges.read(connection)

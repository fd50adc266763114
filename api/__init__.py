"""The HTTP API: app factory, routes, dependencies, problem+json errors."""

API_PREFIX = "/api/v1"

"""The HTTP API: app factory, routes, dependencies, problem+json errors."""

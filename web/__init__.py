"""The web UI: server-rendered pages over the API (see web.pages)."""

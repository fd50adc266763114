"""How the API and the worker log (issue 25, item 4): as text for a person at a terminal,
or with `LOG_FORMAT=json` one JSON object a line for a platform's log collector, each with
the request it belongs to, the draft and the person acting where there are such.

What a line may carry is fixed here: its time, level, logger and message, and the context
set by the code that knows it: the request id (`api.request_log`), the trace it is part of
(`countersign.tracing`, when traces are on), the person (`api.deps.current_principal`),
the draft (`api.desk`; on the worker, `workflows.log_context`). Never a token, a secret or a
reply's text: those are never in a message, and a failure is logged by its type, not by
an exception's text, which may quote what it failed on (a post, a reply). The API's
access log is written through it too (`api.request_log`), by route template rather than
the raw path, whose query may name a customer.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from countersign import tracing

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
DRAFT_ID: ContextVar[int | None] = ContextVar("draft_id", default=None)
ACTOR: ContextVar[str | None] = ContextVar("actor", default=None)
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: the fields above, those unset left out."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": REQUEST_ID.get(),
            "trace_id": tracing.trace_id(),
            "draft_id": DRAFT_ID.get(),
            "actor": ACTOR.get(),
        }
        for field in ("route", "method", "status", "duration_ms"):
            if hasattr(record, field):
                line[field] = getattr(record, field)
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__  # never the exception's text
        return json.dumps({k: v for k, v in line.items() if v is not None}, ensure_ascii=False)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """The root logger's one handler, in `log_format` (text or json); uvicorn's loggers
    write through it."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True

"""The one logging setup of every process, and the ids bound to its lines.

Every record — the workers' `logging.getLogger(__name__)` lines, Celery's, uvicorn's, and
structlog loggers' — goes through one root handler that renders it with structlog:
LOG_FORMAT=json writes one JSON object a line (`timestamp`, `level`, `logger`, `event`, and
whatever is bound), LOG_FORMAT=console aligned text for people (`make demo`, `make up`).

Bound ids (context variables, so each request, task and thread has its own):
- the gateway binds `request_id` to every line of a request (`request_id_of`, called by
  `RequestIdMiddleware` and by the metered fast path): the caller's `X-Request-ID` when it is
  a short visible-ASCII token, else a new one; it is echoed in the response's header;
- a Celery task binds `task_id` and `task_name` while it runs (`bind_task`, from the
  `task_prerun` signal in workers/app.py).
"""

from __future__ import annotations

import logging
import random
import re
import sys
from contextvars import ContextVar
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workers.config import Settings

#: The request id's header, in requests (honoured) and responses (always set).
REQUEST_ID_HEADER = "x-request-id"
_HEADER_BYTES = REQUEST_ID_HEADER.encode()
#: An incoming id is kept when it is 1-128 visible ASCII characters (safe to log and echo).
_ACCEPTABLE_ID = re.compile(rb"[\x21-\x7e]{1,128}")
#: The root handler this module owns (replaced, never duplicated, by a second setup).
_HANDLER_NAME = "workers.observability"
#: Loggers that bring their own handlers (uvicorn's dictConfig): they go through ours instead.
_FOREIGN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

#: The request id of the request this task serves (a plain context variable: setting it is
#: the cheapest binding there is, on the gateway's hot path).
_REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def _add_request_id(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    request_id = _REQUEST_ID.get()
    if request_id is not None:
        event["request_id"] = request_id
    return event


#: Applied to every record, structlog's or stdlib's, before rendering.
_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    _add_request_id,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _renderer(log_format: str) -> list[Any]:
    if log_format == "console":
        # plain tracebacks: rich's would print every frame's locals (secrets among them)
        return [
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
        ]
    return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (a test's capture, a
    redirection made after the setup), never to a stream closed since."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(settings: Settings, level: int | str | None = None) -> None:
    """Routes every log record of this process through one structlog-rendered handler on
    stderr, at `level` (default LOG_LEVEL). Idempotent: a second call replaces the first."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderer(settings.log_format),
        ],
    )
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if level is not None else settings.log_level.upper())
    for name in _FOREIGN_LOGGERS:
        foreign = logging.getLogger(name)
        foreign.handlers.clear()
        foreign.propagate = True
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


# --- request ids (the gateway) ----------------------------------------------------------------


def request_id_of(scope: Scope) -> str:
    """The request's id — its `X-Request-ID` when acceptable, else a new one — bound to every
    log line of the request (the request runs in its own task: the binding ends with it)."""
    request_id: str | None = None
    for key, value in scope["headers"]:
        if key == _HEADER_BYTES:
            if _ACCEPTABLE_ID.fullmatch(value):
                request_id = value.decode("ascii")
            break
    if request_id is None:
        # 128 random bits: unique enough, without the os.urandom syscall of uuid4 (20 µs here);
        # Python reseeds `random` in every forked process.
        request_id = f"{random.getrandbits(128):032x}"  # an id, not a secret
    _REQUEST_ID.set(request_id)
    return request_id


class RequestIdMiddleware:
    """Pure ASGI: binds the request id (`request_id_of`) and echoes it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = (_HEADER_BYTES, request_id_of(scope).encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


# --- task ids (Celery) -------------------------------------------------------------------------


def bind_task(task_id: str, task_name: str) -> None:
    """Binds a running task's id and name to every log line of its thread until `unbind_task`."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=task_id, task_name=task_name)


def unbind_task() -> None:
    structlog.contextvars.unbind_contextvars("task_id", "task_name")

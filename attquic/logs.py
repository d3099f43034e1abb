"""attquic's logging: structured events that go through the standard :mod:`logging` machinery.

Every attquic module logs through :func:`get_logger`: a structlog logger bound to the stdlib
logger of the same name (``attquic``, ``attquic.tdx``, ...). Nothing is configured at import,
so the application decides where the lines go and how they look, with ordinary ``logging``
calls. Until it configures anything, Python prints WARNING and above to stderr (its "last
resort" handler) and drops the rest; attquic never writes to stdout.

Each record's message is ``event key=value ...``; the same data is on the record as
``record.attquic`` (a dict with ``event`` and the fields) for structured handlers.
:func:`configure` is an optional one-call setup (console or JSON lines on stderr) that the
examples and the command line use.

Connection-scoped lines carry ``conn`` (a per-process counter), ``role`` and, once the first
datagram arrived, ``peer`` (``host:port`` of the other endpoint).
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import IO, Any, Final, Literal

import structlog

__all__ = ["EVENT_ATTRIBUTE", "JsonFormatter", "configure", "get_logger"]

EVENT_ATTRIBUTE: Final = "attquic"
"""Name of the :class:`logging.LogRecord` attribute holding the event dict."""

_CONSOLE_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value and "=" not in value else repr(value)
    return str(value)


def _to_stdlib(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Last processor: one ``event key=value`` message plus the dict as ``record.attquic``."""
    event = str(event_dict.pop("event", ""))
    exc_info = event_dict.pop("exc_info", None)
    fields = " ".join(f"{key}={_value(value)}" for key, value in event_dict.items())
    message = f"{event} {fields}" if fields else event
    kwargs: dict[str, Any] = {"extra": {EVENT_ATTRIBUTE: {"event": event, **event_dict}}}
    if exc_info:
        kwargs["exc_info"] = exc_info
    return (message,), kwargs


_PROCESSORS: Final[list[Any]] = [structlog.stdlib.filter_by_level, _to_stdlib]


def get_logger(name: str) -> Any:
    """A structlog logger (``.info(event, **fields)``, ``.bind(...)``) for stdlib logger ``name``.

    Disabled levels cost one ``isEnabledFor`` check: the event is dropped before rendering.
    """
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``event`` and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: Mapping[str, Any] | None = getattr(record, EVENT_ATTRIBUTE, None)
        out: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if data is not None:
            out.update(data)
        else:
            out["event"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def _one_line_warnings(record: logging.LogRecord) -> bool:
    """Captured Python warnings end in a newline (warnings.formatwarning); drop it."""
    if record.name == "py.warnings" and isinstance(record.msg, str):
        record.msg = record.msg.rstrip()
    return True


def configure(
    level: int | str = logging.INFO,
    *,
    log_format: Literal["console", "json"] = "console",
    stream: IO[str] | None = None,
    capture_warnings: bool = True,
) -> logging.Handler:
    """Send attquic's records (and aioquic's warnings) to ``stream`` (default: stderr).

    A convenience for scripts and the examples; libraries and applications with their own
    logging set-up do not need it. Installs one handler on the ``attquic`` logger (replacing a
    previous one installed here) and returns it; the root logger is left alone. aioquic's own
    ``quic`` logger gets the same handler at WARNING, or at ``level`` when that is DEBUG.
    ``capture_warnings`` routes Python warnings (the simulated-TDX warning among them) through
    ``logging.captureWarnings`` into the same handler, so JSON output stays JSON.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_CONSOLE_FORMAT))
    handler.set_name("attquic.logs.configure")
    handler.addFilter(_one_line_warnings)
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    targets = [
        ("attquic", numeric),
        ("quic", numeric if numeric <= logging.DEBUG else logging.WARNING),
    ]
    if capture_warnings:
        logging.captureWarnings(True)
        targets.append(("py.warnings", max(numeric, logging.WARNING)))
    for name, name_level in targets:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == handler.get_name()]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(name_level)
        logger.propagate = False
    return handler

"""Structured logs: `LOG_FORMAT=json` gives one JSON object per line (python-json-logger).

Passed to faust as its `logging_config`, so faust's own lines (rebalances, recovery) come out in
the same format as ours (dead letters, index rebuilds).
"""

from __future__ import annotations

from typing import Any

from worker.config import Settings


def logging_config(settings: Settings) -> dict[str, Any] | None:
    """A logging.dictConfig for JSON output, or None to keep faust's default text format."""
    if settings.log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            },
        },
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stdout"}},
        "root": {"level": settings.log_level.upper(), "handlers": ["stdout"]},
    }

"""Dead letters: everything the worker cannot process, with the original bytes and the reason.

The message keeps the original key and value exactly (as UTF-8 text when they decode, else
base64), so a fixed bug can replay the DLQ onto the input topic: nothing is unrecoverable.
"""

from __future__ import annotations

import base64
import os
import socket
from typing import Any

from topics import SCHEMA_VERSION

_WORKER = f"{socket.gethostname()}:{os.getpid()}"


def encode_bytes(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        return {"encoding": "utf-8", "data": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(data).decode("ascii")}


def decode_bytes(encoded: dict[str, Any] | None) -> bytes | None:
    if encoded is None:
        return None
    if encoded["encoding"] == "utf-8":
        return encoded["data"].encode("utf-8")
    return base64.b64decode(encoded["data"])


def dead_letter(*, key: bytes | None, value: bytes | None, reason: str, error: BaseException,
                stage: str, topic: str, partition: int, offset: int, timestamp: float | None,
                failed_at: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "reason": reason,
        "stage": stage,
        "error_class": type(error).__name__,
        "message": str(error)[:2000],
        "source": {"topic": topic, "partition": partition, "offset": offset, "timestamp": timestamp},
        "original_key": encode_bytes(key),
        "original_value": encode_bytes(value),
        "failed_at": failed_at,
        "worker": _WORKER,
    }


def dead_letter_key(topic: str, partition: int, offset: int) -> bytes:
    return f"{topic}/{partition}/{offset}".encode()

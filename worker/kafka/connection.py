"""Turn "cannot connect" into an error a person can act on.

aiokafka reports a refused login only in its log ("SaslAuthenticationFailed …") and then raises
a generic "Unable to bootstrap". `explain_connection_errors` listens for the first and rewrites
the second into one clear message — without ever printing the password.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from aiokafka.errors import KafkaConnectionError, KafkaError

from worker.config import Settings


class KafkaUnavailable(RuntimeError):
    pass


class _AuthFailureSpy(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.failure: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "SaslAuthenticationFailed" in message or "Authentication failed" in message:
            self.failure = message.split("SaslAuthenticationFailed:", 1)[-1].strip()


@contextlib.contextmanager
def explain_connection_errors(settings: Settings) -> Iterator[None]:
    spy = _AuthFailureSpy()
    aiokafka_log = logging.getLogger("aiokafka")
    aiokafka_log.addHandler(spy)
    try:
        yield
    except (KafkaConnectionError, KafkaError, OSError) as exc:
        where = f"{settings.kafka_bootstrap_servers} ({settings.security_protocol}"
        if settings.security_protocol.startswith("SASL"):
            where += f", {settings.sasl_mechanism} as user {settings.sasl_username!r}"
        where += ")"
        if spy.failure:
            raise KafkaUnavailable(f"Kafka refused the login at {where}: {spy.failure}. "
                                   "Check SASL_USERNAME / SASL_PASSWORD / SASL_MECHANISM.") from None
        raise KafkaUnavailable(f"cannot reach Kafka at {where}: {exc}. "
                               "Is the broker running and KAFKA_BOOTSTRAP_SERVERS right?") from None
    finally:
        aiokafka_log.removeHandler(spy)

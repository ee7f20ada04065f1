"""The faust plumbing the agents stand on, kept out of app.py so app.py reads as the topology.

- `DurableProducer`: acks=all and idempotence in every mode (faust turns them on only for
  exactly_once), so a retried send after a broker hiccup is neither lost nor duplicated.
- `IngestApp`: a faust.App that uses it, and refuses to start when topics are missing.
- `faust_broker_options`: Settings → faust App keyword arguments (brokers, security).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from worker.config import Settings


class DurableProducer(faust_aiokafka.Producer):
    def _settings_extra(self) -> dict[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class DurableTransport(faust_aiokafka.Transport):
    Producer = DurableProducer


class IngestApp(faust.App):
    async def on_first_start(self) -> None:
        # faust creates only the last level of its data folder; DATA_DIR may be nested.
        Path(self.conf.datadir).parent.mkdir(parents=True, exist_ok=True)
        await super().on_first_start()

    def _new_transport(self):
        return DurableTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self):
        return DurableTransport(self.conf.broker_producer, self)


def faust_broker_options(settings: Settings) -> dict[str, Any]:
    hosts = [h.strip() for h in settings.kafka_bootstrap_servers.split(",") if h.strip()]
    options: dict[str, Any] = {"broker": [f"kafka://{h}" for h in hosts]}
    credentials = None
    ssl_context: ssl.SSLContext | None = None
    if settings.security_protocol.endswith("SSL"):
        ssl_context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
        if settings.ssl_certfile:
            ssl_context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile or None)
    if settings.security_protocol.startswith("SASL"):
        credentials = faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=ssl_context,
        )
    elif ssl_context is not None:
        credentials = faust.SSLCredentials(ssl_context)
    if credentials is not None:
        options["broker_credentials"] = credentials
    return options

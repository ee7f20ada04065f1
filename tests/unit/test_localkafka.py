"""The local broker's cluster id (worker/kafka/local_broker.py): never read as a command-line option."""

import base64
from unittest import mock

from worker.kafka import local_broker


def test_cluster_id_never_starts_with_a_dash():
    # the first uuid encodes to "-..." (0xf8 -> "-" in URL-safe base64); the second does not
    dash, plain = bytes([0xF8]) + bytes(15), bytes(16)
    assert base64.urlsafe_b64encode(dash).decode().startswith("-")
    uuids = iter([mock.Mock(bytes=dash), mock.Mock(bytes=plain)])
    with mock.patch.object(local_broker.uuid, "uuid4", lambda: next(uuids)):
        cluster_id = local_broker._new_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(plain).decode().rstrip("=")
    assert len(cluster_id) == 22

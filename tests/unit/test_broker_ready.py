"""The local broker's readiness check reads only what the current start wrote, all of it."""

from worker.kafka.local_broker import _ReadyWatch


def test_ready_line_of_this_start_only_even_when_followed_by_megabytes(tmp_path):
    log = tmp_path / "broker.log"
    log.write_bytes(b"[KafkaRaftServer nodeId=1] Kafka Server started\nshutdown\n")  # a previous start
    watch = _ReadyWatch(log)
    assert not watch.seen()
    with open(log, "ab") as f:
        f.write(b"loading partitions\n" * 5000 + b"[KafkaRaftServer nodeId=1] Kafka Server sta")
    assert not watch.seen()
    with open(log, "ab") as f:  # the line completes, then a restarted broker logs a lot at once
        f.write(b"rted\n" + b"partition state loaded\n" * 200_000)
    assert watch.seen()

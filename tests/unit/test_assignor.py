"""FunnelAwareAssignor: fewer input partitions for the worker that holds the dedup funnel."""

from faust.assignor.client_assignment import ClientAssignment

from worker.kafka.faust_support import FunnelAwareAssignor

RAW, FUNNEL = "articles.raw", "articles.dedup-requests"


def assign(*raw_partitions, funnel_at=0, weight=0.5):
    assignor = object.__new__(FunnelAwareAssignor)
    assignor.input_topic, assignor.funnel_topic, assignor.funnel_weight = RAW, FUNNEL, weight
    clients = {}
    for i, parts in enumerate(raw_partitions):
        actives = {RAW: list(parts)} if parts else {}
        if i == funnel_at:
            actives[FUNNEL] = [0]
        clients[f"w{i}"] = ClientAssignment(actives=actives, standbys={})
    total = sum(len(p) for p in raw_partitions)
    assignor.unload_funnel_host(clients, total)
    return [sorted(c.actives.get(RAW, [])) for c in clients.values()]


def test_two_workers_the_funnel_host_keeps_one_of_four():
    assert assign([0, 1], [2, 3]) == [[0], [1, 2, 3]]


def test_the_funnel_host_can_give_up_all_its_input():
    # load = partitions (+ 0.5 x 4 = 2 for the funnel): 3, 1, 1, 1 -> 2, 2, 1, 1
    assert assign([0], [1], [2], [3]) == [[], [0, 1], [2], [3]]


def test_nothing_moves_when_it_would_not_help():
    assert assign([0, 1, 2, 3]) == [[0, 1, 2, 3]]  # one worker
    assert assign([0], [1], [2], [3], weight=0.1) == [[0], [1], [2], [3]]  # 1.4 vs 2 after a move
    assert assign([0, 1], [2, 3], weight=0.0) == [[0, 1], [2, 3]]


def test_every_partition_stays_assigned_once():
    result = assign([0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11], [])
    flat = sorted(p for parts in result for p in parts)
    assert flat == list(range(12))
    assert len(result[0]) < len(result[1]) and len(result[0]) < len(result[2]) + 2

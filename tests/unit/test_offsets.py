"""IngestConsumer._new_offset: what offset faust may commit, given what was processed."""

from collections import defaultdict

from intervaltree import IntervalTree

from worker.faust_support import IngestConsumer

TP = ("articles.raw", 0)


def consumer(committed, acked, first=None, gaps=()):
    state = object.__new__(IngestConsumer)  # only the bookkeeping _new_offset reads
    state._acked = defaultdict(list, {TP: list(acked)})
    state._acked_index = defaultdict(set, {TP: set(acked)})
    state._committed_offset = defaultdict(lambda: None, {TP: committed})
    state._first_seen = {TP: first} if first is not None else {}
    state._gap = defaultdict(IntervalTree)
    for begin, end in gaps:
        state._gap[TP].addi(begin, end)
    return state


def new_offset(state):
    return IngestConsumer._new_offset(state, TP)


def test_commits_the_run_that_starts_at_the_committed_offset():
    assert new_offset(consumer(100, [100, 101, 102, 104])) == 103


def test_offsets_never_delivered_are_skipped():
    # 101 is a transaction marker between two delivered records
    assert new_offset(consumer(100, [100, 102, 103], gaps=[(101, 102)])) == 104
    # after a restart the records from the committed offset on were aborted: first delivered 140
    assert new_offset(consumer(100, [140, 141], first=140)) == 142


def test_nothing_acked_nothing_to_commit():
    assert new_offset(consumer(100, [])) is None

"""Lesson 12 names the largest part of a measured commit from the numbers, never from
prose: txlib.course.l12_real_databases.largest_part reads txlib.real.bench.breakdown's
rows (here made up, so the test does not depend on this machine's disk)."""

from __future__ import annotations

import pytest

import txlib
from txlib.course.l12_real_databases import largest_part


def rows(disk: float, net: float, rest: float, whole: float) -> list[tuple[str, float, str]]:
    return [("one append + fsync", 0.1, ""),
            ("one 2PC transaction, end to end (3 participants)", whole, "100%"),
            ("  its 3 forced writes in sequence (2 SQLite commits + 1 fsync)", disk, "x"),
            ("  its 2 message round trips", net, "x"),
            ("  the rest: Python handlers, JSON, the runner's control messages, scheduling",
             rest, "x")]


def test_the_largest_part_is_read_from_the_numbers():
    slow_disk = largest_part(rows(disk=10.153, net=0.035, rest=0.0, whole=9.804))
    assert "its 3 forced writes" in slow_disk and "10.153 ms of 9.804" in slow_disk
    assert "timed on its own" in slow_disk, "parts adding up to more than the whole"
    fast_disk = largest_part(rows(disk=0.3, net=0.1, rest=1.35, whole=1.75))
    assert "the rest: Python handlers" in fast_disk and "timed on its own" not in fast_disk


def test_anything_but_a_breakdown_is_refused():
    with pytest.raises(txlib.TxlibError, match="breakdown"):
        largest_part([("one append + fsync", 0.1, "")])

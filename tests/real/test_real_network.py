"""A real network: each node in its own network namespace, joined by a virtual switch,
and a partition that takes a node's link down for a bounded time.

Needs root and the ``ip`` program (iproute2); skipped otherwise, except under CI, where
they must run (CI runs as root). Every namespace a test makes is removed when its
system closes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from txlib.errors import TxlibError
from txlib.real import RealSystem
from txlib.real.netns import NETNS_DIR, available


@pytest.fixture(autouse=True)
def needs_namespaces() -> None:
    why = available()
    if why:
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true but the network tests cannot run: {why}", pytrace=False)
        pytest.skip(f"network tests skipped: {why}")


def ours() -> list[str]:
    """This process's namespaces."""
    return sorted(p.name for p in NETNS_DIR.glob(f"txlib-{os.getpid()}-*")) \
        if NETNS_DIR.exists() else []


def test_each_node_runs_in_its_own_network_namespace(timeouts):
    with RealSystem(3, options=timeouts, network=True) as system:
        system.begin("T1")
        assert system.settle("T1", 20)
        run = system.result("T1")
        mine = os.stat("/proc/self/ns/net").st_ino
        for node, h in system.handles.items():
            theirs = os.stat(f"/proc/{h.pid}/ns/net").st_ino
            assert theirs != mine
            assert theirs == os.stat(NETNS_DIR / system.network.netns[node]).st_ino
        assert all(a.startswith("10.231.") for a in system.network.addresses.values())
        assert len(ours()) == 5  # four nodes and the switch
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert ours() == []


def test_a_partition_during_the_vote_aborts(timeouts):
    """p2's link goes down for 1.5 s as T2 begins; its vote cannot arrive within the
    1 s vote timeout, so the coordinator aborts; after the heal, TCP delivers what was
    waiting and p2 learns the abort. Nothing is lost or left in doubt."""
    with RealSystem(3, options=timeouts, network=True) as system:
        system.begin("T1")  # connections are open: a partition delays, it does not refuse
        assert system.settle("T1", 20)
        system.partition("p2", 1.5, tx="T2")
        system.begin("T2")
        assert system.settle("T2", 30)
        run = system.result("T2")
    assert run.outcome == "aborted" and run.problems() == [], run.summary()
    assert [(e.kind, e.node) for e in run.trace if e.kind in ("partition", "heal")] == \
        [("partition", "p2"), ("heal", "p2")]


def test_a_short_partition_only_delays_the_messages(timeouts):
    """With a vote timeout longer than the partition, the delayed PREPARE and YES arrive
    after the heal (TCP retransmits them) and the transaction commits."""
    with RealSystem(3, options={**timeouts, "vote_timeout": 5000, "prepare_timeout": 5000},
                    network=True) as system:
        system.begin("T1")
        assert system.settle("T1", 20)
        system.partition("p3", 0.5, tx="T2")
        system.begin("T2")
        assert system.settle("T2", 30)
        run = system.result("T2")
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert run.elapsed >= 0.5  # it waited for the heal


def test_partitions_are_bounded_and_need_a_network(timeouts):
    with RealSystem(3, options=timeouts) as system, \
            pytest.raises(TxlibError, match=r"RealSystem\(network=True\)"):
        system.partition("p1", 1)
    with RealSystem(3, options=timeouts, network=True) as system:
        for bad in (0, 61, -1, True, "1"):
            with pytest.raises(TxlibError, match="at most 60"):
                system.partition("p1", bad)
        with pytest.raises(TxlibError, match="unknown node to cut off 'p9'"):
            system.partition("p9", 1)
    with pytest.raises(TxlibError, match="network=True needs SQLite participants"):
        RealSystem(3, "postgres", postgres="host=127.0.0.1", network=True)
    assert ours() == []


def test_a_dead_owners_namespaces_are_swept():
    """Namespaces named after a process that no longer exists are deleted by the next
    network's start."""
    from txlib.real.netns import Network, ip

    name = "txlib-999999999-abcdef-switch"
    ip("netns", "add", name)
    try:
        with Network(["a"]):
            assert not (NETNS_DIR / name).exists()
    finally:
        if (NETNS_DIR / name).exists():
            ip("netns", "del", name)
    assert not Path(NETNS_DIR / name).exists()

"""The real runtime with embedded SQLite participants: real processes, TCP, fsync,
SIGKILL and restarts, with the protocol code of txlib.protocols.two_phase unchanged."""

from __future__ import annotations

import inspect
import io
import json
import os
import random
import socket
import sqlite3
from dataclasses import replace
from itertools import pairwise

import pytest
from rich.console import Console

import txlib
from txlib.errors import TxlibError
from txlib.protocols import get_protocol
from txlib.real import CRASH_POINTS, EXPECTED_OUTCOME, Crash, RealSystem, run_transfer
from txlib.real.chaos import crash_loop
from txlib.real.merge import merge
from txlib.real.stores import FileLog, PrepareFailed, SqliteAccount, sqlite_create
from txlib.viz.console import show
from txlib.viz.spacetime import spacetime_svg

NODE_OF_ROLE = {"coordinator": "coordinator", "participant": "p1"}
ALL_POINTS = [(NODE_OF_ROLE[role], point) for role, points in CRASH_POINTS.items()
              for point in points]
SHOWN = ("state", "log", "decision", "vote", "lock", "unlock")


def per_node(trace: txlib.engine.trace.Trace) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for e in trace:
        if e.kind in SHOWN and e.node is not None:
            out.setdefault(e.node, []).append((e.kind, e.detail))
    return out


def test_a_transfer_commits_over_real_processes(timeouts):
    run = run_transfer(3, options=timeouts)
    assert run.outcome == "committed"
    assert run.problems() == []
    assert run.balances == {"p1": 800, "p2": 600, "p3": 600}
    assert run.in_doubt == {"p1": (), "p2": (), "p3": ()} and run.locked == ()
    # PREPARED and COMMITTED are forced on every participant; the coordinator forces
    # COMMIT (plus one sync of its log's folder when the file is created).
    assert {p: run.fsyncs[p] for p in run.participants} == {"p1": 2, "p2": 2, "p3": 2}
    assert run.fsyncs["coordinator"] == 2
    assert [r.record for r in run.logs["coordinator"]] == ["COMMIT", "END"]
    assert [r.record for r in run.logs["p2"]] == ["PREPARED", "COMMITTED"]


def test_a_real_run_is_judged_by_the_2pc_protocol(timeouts):
    """The outcome and the violations are the registered 2PC protocol's judgement of the
    run's History; the real-database checks of problems() come on top."""
    run = run_transfer(3, options=timeouts)
    two_pc = get_protocol("2pc")
    history = run.history()
    assert history.roster == two_pc.roster(run.participants, {})
    assert history.events is not None and history.steps == run.trace.last_step > 0
    assert history.logs == run.logs and history.down == run.down == frozenset()
    assert two_pc.judge(history).outcome == run.outcome == "committed"
    assert run.violations == tuple(two_pc.violations(history)) == ()
    split = replace(run, decisions={**run.decisions, "p2": "abort"})
    assert split.outcome == "inconsistent"
    assert any("the nodes do not agree" in p for p in split.problems())
    assert replace(run, settled=False).outcome == "blocked"
    with pytest.raises(TxlibError, match="record=False"):
        _ = replace(run, trace_or_none=None).violations


def test_the_real_nodes_run_the_simulators_protocol_code(timeouts):
    """Same handlers, same context calls: every node's own sequence of states, log
    writes, votes, decisions and locks is the simulator's."""
    real = run_transfer(3, options=timeouts)
    simulated = txlib.simulate("2pc", participants=3)
    assert per_node(real.trace) == per_node(simulated.trace)


def test_the_real_node_host_is_an_engine_host():
    """Protocol code on a real node acts through the engine's own Context, over a node
    host that offers every member of the engine's Host interface, with its parameters."""
    from txlib.engine.node import Host
    from txlib.real.host import NodeHost

    members = [n for n in vars(Host) if not n.startswith("_")]
    assert {"send", "write_log", "change_state", "set_locks", "time", "config"} <= set(members)
    for name in members:
        theirs, ours = inspect.getattr_static(Host, name), inspect.getattr_static(NodeHost, name)
        if isinstance(theirs, property):
            assert isinstance(ours, property), name
        else:
            assert inspect.signature(ours).parameters.keys() == \
                inspect.signature(theirs).parameters.keys(), name


def test_the_trace_draws_like_any_other(timeouts):
    run = run_transfer(3, crash=("coordinator", "after_decision_logged"), options=timeouts)
    trace = run.trace
    assert [e.index for e in trace] == list(range(len(trace)))
    assert all(a.step <= b.step and a.time <= b.time for a, b in pairwise(trace))
    sent = {e.message.id: e.index for e in trace if e.kind == "send"}
    assert all(sent[e.message.id] < e.index for e in trace if e.kind == "deliver")
    kinds = {e.kind for e in trace}
    assert {"start", "send", "deliver", "log", "crash", "recover", "decision"} <= kinds
    svg = spacetime_svg(trace, roles=run.roles, window=None)
    assert svg.startswith("<svg") and "restarts with 1 log record" in svg
    out = io.StringIO()
    show(run.as_run(), console=Console(file=out, width=120, color_system=None))
    assert "COMMITTED" in out.getvalue() and "recover" in out.getvalue()
    assert "<svg" in txlib.diagram(run.as_run())._repr_svg_()
    assert run.as_run().violations == ()


@pytest.mark.parametrize(("node", "point"), ALL_POINTS, ids=[p for _, p in ALL_POINTS])
def test_kill_9_at_each_protocol_point_then_restart(node, point, timeouts):
    run = run_transfer(3, crash=(node, point), options=timeouts)
    assert run.problems() == [], run.summary()
    assert run.outcome == EXPECTED_OUTCOME[point], run.summary()
    assert [(c["node"], c["how"]) for c in run.crashes] == [(node, point)]
    crash = [e for e in run.trace if e.kind == "crash"]
    assert [(e.node, e.detail) for e in crash] == [(node, f"killed with SIGKILL at {point}")]
    assert any(e.kind == "recover" and e.node == node for e in run.trace)
    assert run.unfired == ()


def test_kill_9_from_outside_at_a_moment(timeouts):
    run = run_transfer(3, crash=("p2", 0.0), options=timeouts)
    assert run.problems() == [], run.summary()
    assert run.crashes[0]["node"] == "p2"
    assert any(e.kind == "crash" and "by the runner" in e.detail for e in run.trace)


def test_a_no_vote_aborts_and_changes_nothing(timeouts):
    run = run_transfer(3, vote_no=["p3"], options=timeouts)
    assert run.outcome == "aborted" and run.problems() == []
    assert run.balances == run.before


def test_in_doubt_state_is_durable_in_sqlite_and_resolved_on_restart(timeouts):
    with RealSystem(3, options=timeouts, restart=False) as system:
        system.begin("T1", crash=("coordinator", "before_decision_logged"))
        system.wait(lambda s: "coordinator" in s.down and all(
            s.state(p, "T1") == "PREPARED" for p in s.participants), 10, "doubt")
        # Each participant's database holds the row for T1 with its pending change, and
        # the PREPARED record, committed together.
        db = sqlite3.connect(system.workdir / "data" / "p1.sqlite")
        assert db.execute("SELECT balance, locked_by, pending FROM accounts").fetchone() == \
            (1000, "T1", -200)
        assert db.execute("SELECT record FROM txlog WHERE tx = 'T1'").fetchall() == \
            [("PREPARED",)]
        db.close()
        # Kill p1 too while in doubt: the restarted p1 reads PREPARED back, stays in
        # doubt with the row still held, and asks.
        system.kill("p1")
        system.restart("p1")
        system.wait(lambda s: s.state("p1", "T1") == "PREPARED", 10, "p1 back in doubt")
        assert system.inspect()["p1"]["locked"]
        system.restart("coordinator")
        assert system.settle("T1", 20)
        run = system.result("T1")
    assert run.outcome == "aborted" and run.problems() == [], run.summary()


def test_randomized_crash_loop_sqlite():
    """At least 100 kill -9s at random protocol points and moments, one to three per
    transaction (sometimes the restarted process dies again), on one long-lived system."""
    seed = int(os.environ.get("TXLIB_CRASH_SEED", random.randrange(1_000_000)))
    report = crash_loop(100, seed=seed)
    assert report.problems == [], f"seed {seed}: {report.problems[:5]}"
    assert report.fired >= 100, f"seed {seed}: {report}"
    assert set(report.outcomes) == {"committed", "aborted"}, f"seed {seed}: {report}"


# --- bad configuration --------------------------------------------------------------------
def test_a_port_in_use_says_which_and_what_to_do():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(TxlibError, match=rf"port 127\.0\.0\.1:{port} \(for p2\) is "
                                             "already in use.*choose a free port"):
            run_transfer(3, ports={"p2": port})


def test_a_port_taken_after_the_check_is_reported_by_the_node(monkeypatch):
    """The runner checks ports first; if one is taken between the check and the node's
    bind (or while the node was down), the node says so, and the run stops with it."""
    monkeypatch.setattr("txlib.real.supervisor.port_is_free", lambda host, port: True)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(TxlibError, match=rf"p3 cannot listen on 127\.0\.0\.1:{port} .*"
                                             "that port is in use"):
            run_transfer(3, ports={"p3": port})


def test_bad_arguments_name_the_choices():
    with pytest.raises(TxlibError, match="unknown crash point for p1 'after_lunch'"):
        run_transfer(3, crash=("p1", "after_lunch"))
    with pytest.raises(TxlibError, match="unknown node to crash 'p9'"):
        run_transfer(3, crash=Crash("p9", after=0.1))
    with pytest.raises(TxlibError, match="unknown backend 'mysql'"):
        run_transfer(3, "mysql")
    with pytest.raises(TxlibError, match="PostgreSQL participants need postgres="):
        run_transfer(3, "postgres")


# --- storage, without processes --------------------------------------------------------------
def test_the_coordinator_log_loses_lazy_records_until_a_forced_write(tmp_path):
    log = FileLog(tmp_path / "c.log")
    log.append("T1", "ABORT", {"tx": "T1"}, False, "abort", 5)
    assert FileLog(tmp_path / "c.log").read() == {}  # a SIGKILL now would lose it
    log.append("T2", "COMMIT", {"tx": "T2"}, True, "commit", 6)
    back = FileLog(tmp_path / "c.log").read()  # the forced write flushed both
    assert [(r.record, d) for r, d in back["T1"] + back["T2"]] == [("ABORT", "abort"),
                                                                  ("COMMIT", "commit")]
    with open(tmp_path / "c.log", "ab") as f:
        f.write(b'{"tx": "T3", "rec')  # a write torn by a kill
    assert set(FileLog(tmp_path / "c.log").read()) == {"T1", "T2"}


def test_sqlite_prepare_and_commit_are_single_local_transactions(tmp_path):
    path = tmp_path / "p.sqlite"
    sqlite_create(path, "p", 500)
    acct = SqliteAccount(path, "p")
    acct.append("T1", "PREPARED", {"tx": "T1", "op": "debit", "amount": 70}, True, None, 1)
    assert acct.held("T1") and acct.balance("T1") == 500
    with pytest.raises(PrepareFailed, match="held by in-doubt transaction T1"):
        acct.balance("T2")
    acct.append("T1", "COMMITTED", {"tx": "T1", "op": "debit", "amount": 70}, True,
                "commit", 2)
    assert not acct.held("T1") and acct.balance("T2") == 430
    assert [r.record for r, _ in acct.read()["T1"]] == ["PREPARED", "COMMITTED"]
    assert acct.fsyncs == 2
    acct.close()


def test_merge_never_puts_a_delivery_before_its_send(tmp_path):
    """Clocks of two hosts may disagree: the merge follows causality, not timestamps."""
    msg = {"src": "coordinator", "dst": "p1", "type": "PREPARE", "payload": {"tx": "T1"},
           "key": ["coordinator", 0, 1], "hops": 1, "at": 0}
    for node, kind, t in (("coordinator", "send", 9000), ("p1", "deliver", 4000)):
        event = {"n": node, "i": 0, "s": 1, "h": 1, "t": t, "k": kind, "d": "", "x": "T1",
                 "m": msg}
        (tmp_path / f"{node}.jsonl").write_text(json.dumps(event) + "\n")
    trace = merge(sorted(tmp_path.glob("*.jsonl")), ["coordinator", "p1"],
                  {"coordinator": "INIT", "p1": "INIT"})
    assert [(e.kind, e.node, e.time) for e in trace] == [("send", "coordinator", 0),
                                                         ("deliver", "p1", 0)]


# --- heuristic outcomes and the recovery scan ------------------------------------------------
def test_an_operator_releasing_a_held_row_is_reported_as_a_heuristic_rollback(timeouts):
    """SQLite's version of ROLLBACK PREPARED: the held row can be released by hand only
    by logging the resolution first (the trigger insists), so it is never silent."""
    with RealSystem(3, options=timeouts, restart=False) as system:
        system.begin("T1", crash=("coordinator", "after_decision_logged"))
        system.wait(lambda s: "coordinator" in s.down and all(
            s.state(p, "T1") == "PREPARED" for p in s.participants), 10, "doubt")
        db = sqlite3.connect(system.workdir / "data" / "p2.sqlite", isolation_level=None)
        with pytest.raises(sqlite3.IntegrityError, match="held by an in-doubt transaction"):
            db.execute("UPDATE accounts SET locked_by = NULL, pending = 0")  # not logged
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO txlog(tx, record, data, forced, decides, time) "
                   "VALUES ('T1', 'ABORT', '{}', 1, 'abort', 0)")
        db.execute("UPDATE accounts SET locked_by = NULL, pending = 0")
        db.execute("COMMIT")
        db.close()
        system.restart("coordinator")
        assert system.settle("T1", 30), system.describe()
        system.stop_nodes()
        run = system.result("T1")
    assert run.outcome == "heuristic mixed" and run.heuristics == {"p2": "rollback"}
    assert run.balances == {"p1": 800, "p2": 500, "p3": 600}


def test_the_recovery_scan_finishes_a_participant_that_never_returns(timeouts):
    with RealSystem(3, options=timeouts, restart=False) as system:
        system.begin("T1", crash=("p2", "after_vote_sent"))
        # Wait for p2's death to be noticed too: recover() finishes only nodes known down.
        system.wait(lambda s: s.state("coordinator", "T1") == "COMMITTED" and all(
            s.state(p, "T1") == "COMMITTED" for p in ("p1", "p3")) and "p2" in s.down,
            10, "commit, with p2 known down")
        assert [(x.participant, x.tx) for x in system.recovery_scan()] == [("p2", "T1")]
        (line,) = system.recover()
        assert line.endswith("committed (the coordinator's log has COMMIT)")
        assert system.inspect()["p2"] == {"balance": 600, "in_doubt": [], "locked": False}
        system.restart("p2")  # it finds COMMITTED in its own log
        assert system.settle("T1", 20)
        run = system.result("T1")
    assert run.outcome == "committed" and run.problems() == [], run.summary()

"""What a learner can get wrong with txlib.real, refused with a TxlibError that names the
bad value and what would do: crash specs, RealSystem's arguments, calls made before
start() or after close(), unknown transactions and nodes, timeouts, crash_loop's
arguments. None may hang, leak a process or folder, or answer silently and wrongly."""

from __future__ import annotations

import math

import pytest

from txlib.errors import TxlibError
from txlib.real import Crash, RealSystem, run_transfer
from txlib.real.chaos import crash_loop
from txlib.real.crashpoints import as_crashes

NODES = ("coordinator", "p1", "p2", "p3")


# --- crash specs (no processes) ----------------------------------------------------------
@pytest.mark.parametrize("after", [1e12, math.inf, math.nan, "1", True])
def test_a_crash_at_a_moment_out_of_range_is_refused(after):
    """Before, a kill 10**12 s (or NaN, or infinity) away was accepted: it stayed
    pending, so the transaction never counted as settled and came out 'blocked'."""
    with pytest.raises(TxlibError, match="after must be a number of seconds from 0 to 3600"):
        as_crashes(Crash("p1", after=after), NODES)
    if isinstance(after, float):
        with pytest.raises(TxlibError, match="from 0 to 3600"):
            as_crashes(("p1", after), NODES)


def test_a_crash_for_a_life_given_as_a_bool_is_refused():
    with pytest.raises(TxlibError, match="incarnation must be a whole number"):
        as_crashes(Crash("p1", point="after_vote_sent", incarnation=True), NODES)


def test_one_crash_written_as_a_list_says_to_write_a_tuple():
    with pytest.raises(TxlibError, match=r"for one crash write a tuple, "
                                         r"crash=\('p1', 'after_vote_sent'\)"):
        as_crashes(["p1", "after_vote_sent"], NODES)
    with pytest.raises(TxlibError, match=r"got 'p1' in \('p1', 'after_vote_sent', 1\)"):
        as_crashes(("p1", "after_vote_sent", 1), NODES)


# --- RealSystem's arguments (refused before anything starts) ------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"vote_no": None}, "vote_no must be a list of participants, got None"),
    ({"vote_no": "p1"}, r"did you mean vote_no=\['p1'\]"),
    ({"restart": "no"}, "restart must be True or False, got 'no'"),
    ({"record": "yes"}, "record must be True or False"),
    ({"ports": [7001]}, "ports must be a mapping of node names to port numbers"),
    ({"host": 5}, "host must be an address"),
    ({"workdir": 5}, "workdir must be a folder's path"),
    ({"participants": ["x/y", "b"]}, "participant names must not contain"),
    ({"participants": ["P1", "p1"], "backend": "postgres", "postgres": "host=127.0.0.1"},
     "would share the PostgreSQL database 'txlib_p1'"),
])
def test_real_system_refuses_bad_arguments(kwargs, message):
    with pytest.raises(TxlibError, match=message):
        RealSystem(**kwargs)


def test_an_unknown_option_names_only_the_options_a_real_run_takes():
    """Before, the choices listed the simulated world's options (latency_min, ...) and a
    transfer's own arguments (amount, ...), which a real run then refuses."""
    with pytest.raises(TxlibError, match="did you mean 'vote_timeout'") as caught:
        RealSystem(3, options={"vote_timout": 500})
    for refused in ("latency_min", "max_steps", "amount", "balances"):
        assert repr(refused) not in str(caught.value)


def test_a_port_given_as_a_bool_is_refused():
    with pytest.raises(TxlibError, match=r"port for p1 must be a number 1\.\.65535, got True"), \
            RealSystem(3, ports={"p1": True}):
        pass


# --- calls in the wrong order, unknown names, timeouts ------------------------------------
def test_calls_before_start_and_after_close_are_refused(timeouts):
    """Before, settle() before start() said True, start() on a running system closed it,
    and calls after close() failed deep inside (sqlite3, a closed epoll object)."""
    system = RealSystem(3, options=timeouts, power_cuts=True)
    for call in (lambda: system.settle("T1", 1), lambda: system.result("T1"),
                 lambda: system.kill("p1"), lambda: system.state("p1", "T1")):
        with pytest.raises(TxlibError, match="start the system first"):
            call()
    with system:
        with pytest.raises(TxlibError, match="already started"):
            system.start()
        system.begin("T1")  # the failed start() left the system running
        assert system.settle("T1", 20)
        system.power_cut("p1")  # one node, named alone (before: "unknown node 'p'")
        assert system.settle("T1", 20)
        assert system.result("T1").outcome == "committed"
    for call in (lambda: system.result("T1"), lambda: system.settle("T1", 1),
                 lambda: system.inspect(), lambda: system.start()):
        with pytest.raises(TxlibError, match="closed"):
            call()


def test_what_a_kept_folder_holds_can_still_be_read_after_close(timeouts, tmp_path):
    """A folder of the caller's (workdir=) outlives close(): reading it stays allowed;
    acting on the nodes does not."""
    with RealSystem(3, options=timeouts, workdir=tmp_path) as system:
        system.begin("T1")
        assert system.settle("T1", 20)
    assert system.balances() == {"p1": 800, "p2": 600, "p3": 600}
    assert system.result("T1").outcome == "committed"
    with pytest.raises(TxlibError, match=r"closed, so begin\('T2'\) cannot be done"):
        system.begin("T2")


def test_unknown_transactions_nodes_and_timeouts_are_refused(timeouts):
    """Before, settle() of a transaction never begun waited out its timeout and result()
    judged it 'blocked'; an unknown node was a KeyError; a timeout of NaN, -1 or 10**12
    was taken (or failed deep inside)."""
    with RealSystem(3, options=timeouts) as system:
        system.begin("T1")
        assert system.settle("T1", 20)
        for call in (lambda: system.settle("T2", 20), lambda: system.result("T2"),
                     lambda: system.trace("T2")):
            with pytest.raises(TxlibError, match=r"unknown transaction 'T2'.*'T1'"):
                call()
        for call in (lambda: system.kill("p9"), lambda: system.restart("p9"),
                     lambda: system.state("p9", "T1")):
            with pytest.raises(TxlibError, match=r"unknown node.* 'p9'; valid choices"):
                call()
        for timeout in (-1, math.nan, "5", 10**12):
            with pytest.raises(TxlibError, match="timeout must be a number of seconds"):
                system.settle("T1", timeout)
            with pytest.raises(TxlibError, match="timeout must be a number of seconds"):
                system.wait(lambda s: True, timeout)
        with pytest.raises(TxlibError, match=r"wait\(\) needs a function"):
            system.wait(True, 1)


def test_run_transfer_turns_power_cuts_on_for_a_tuple_of_crashes_too(timeouts):
    run = run_transfer(3, options=timeouts,
                       crash=(Crash("p1", point="after_vote_sent", power=True),))
    assert run.outcome == "committed" and run.problems() == []
    assert [c["power"] for c in run.crashes] == [True]


# --- crash_loop ---------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"crashes": 0}, "crashes must be a whole number from 1 to 100,000, got 0"),
    ({"crashes": -1}, "crashes must be a whole number"),
    ({"crashes": "5"}, "crashes must be a whole number"),
    ({"crashes": 10**12, "max_transactions": 1}, "crashes must be a whole number"),
    ({"max_transactions": 0}, "max_transactions must be a whole number"),
    ({"deadline": 0}, "deadline must be a number of seconds"),
    ({"deadline": 1e300, "max_transactions": 1}, "deadline must be a number of seconds"),
    ({"power": "yes"}, "power must be True or False, got 'yes'"),
    ({"protocl": "3pc"}, "unknown argument of crash_loop 'protocl' .did you mean 'protocol'"),
    ({"protocol": "3p"}, r"unknown protocol for real runs '3p'.*'paxos-commit'$"),
    ({"options": [1]}, "options must be a mapping"),
    ({"restart": False}, "crash_loop sets restart itself"),
    ({"restart_delay": 1.0}, "crash_loop sets restart_delay itself"),
    ({"operations": {}}, "crash_loop sets operations itself"),
])
def test_crash_loop_refuses_bad_arguments(kwargs, message):
    with pytest.raises(TxlibError, match=message):
        crash_loop(**kwargs)


def test_crash_loop_takes_participant_names_and_runs_at_least_one_transaction():
    """Before, a deadline shorter than the start returned an empty report with no
    problems (it reads as 'all is well'), and a list of names was a TypeError."""
    report = crash_loop(1, participants=["a", "b"], deadline=1e-6, seed=1)
    assert report.transactions >= 1 and report.problems == []
    assert set(report.runs[0].balances) == {"a", "b"}


def test_pump_with_time_already_up_waits_for_nothing(timeouts):
    """Lesson 12 pumps for the time left, pump(end - time.monotonic()) in a loop while
    time.monotonic() < end (its notebook, and coordinator_kept_down): just after end
    that is a little below 0, which pump refused as a bad timeout. It waits for nothing
    instead; a timeout that is no number of seconds is still refused."""
    with RealSystem(3, options=timeouts) as system:
        system.begin("T1")
        system.pump(-1e-6)
        system.pump(-0.5)
        for timeout in (math.nan, -math.inf, "5", True, 10**12):
            with pytest.raises(TxlibError, match="timeout must be a number of seconds"):
                system.pump(timeout)
        assert system.settle("T1", 20)

"""The exhaustive explorer, the TLA+ models, the fault grid and "can it get worse?"."""

from __future__ import annotations

import sys
from collections import deque
from typing import Any

import pytest

import txlib
from txlib.engine.world import World
from txlib.explorer import schedule
from txlib.explorer import search as search_module
from txlib.explorer.actions import Crash, CrashDuring, Drop, Partition, Recover
from txlib.explorer.judging import ExploredWorld
from txlib.explorer.memo import Effect, Memo
from txlib.explorer.search import RichProgress, SearchProgress
from txlib.explorer.tla import (
    TLC_COUNTS,
    TCommit,
    TwoPhase,
    check,
    refinement_violations,
)
from txlib.explorer.worlds import WorldModel, explore
from txlib.explorer.worse import find_worse, worse
from txlib.protocols import PROTOCOLS, CommitProtocol, get_protocol, two_phase
from txlib.protocols.tcc import TryConfirmCancel
from txlib.protocols.variants import Eager2PC, Impatient2PC
from txlib.viz.grid import fault_grid
from txlib.viz.lab import LabModel
from txlib.viz.spacetime import spacetime_svg
from txlib.viz.widgets import Lab, outcome_html


def world_of(protocol: str, participants: tuple[str, ...] = ("p1", "p2")) -> World:
    proto = get_protocol(protocol)
    config = proto.make_config(participants, {})
    return World(proto.build(proto.roster(participants, {}), config), config, 0, record=True)


# --- clone and fingerprint ------------------------------------------------------------
def test_a_clone_runs_on_alone_and_ends_exactly_like_its_original():
    w = world_of("3pc")
    w.start()
    for _ in range(4):
        w.execute(w.pending()[0])
    before = w.fingerprint()
    c = w.clone()
    assert c.fingerprint() == before and c.nodes["p1"] is not w.nodes["p1"]
    c.run()
    assert w.fingerprint() == before, "running the clone must not touch the original"
    assert len(w.trace) < len(c.trace)
    w.run()
    assert list(w.trace) == list(c.trace)
    assert w.fingerprint() == c.fingerprint()


def test_fingerprints_ignore_order_ids_and_times_but_not_what_matters():
    def after(order: list[str]) -> World:
        w = world_of("2pc")
        w.start()
        for dst in order:
            entry = next(e for e in w.queue.messages() if e[2].dst == dst)
            w.execute(entry)
        return w

    a, b = after(["p1", "p2"]), after(["p2", "p1"])
    ids = lambda w: sorted((m.src, m.id) for _, _, m in w.queue.messages())  # noqa: E731
    assert ids(a) != ids(b), "the YES votes were sent in a different order"
    assert a.fingerprint() == b.fingerprint()
    assert after(["p1"]).fingerprint() != a.fingerprint()
    c = a.clone()
    c.nodes["p1"].timers.clear()
    assert c.fingerprint() != a.fingerprint(), "pending timers are part of the state"


# --- the expected findings --------------------------------------------------------------
def test_2pc_with_a_crash_is_safe_but_blocks():
    result = explore("2pc", participants=2, max_crashes=1, progress=False)
    assert result.complete and result.violations == ()
    assert result.blocking is not None and result.blocking_states > 0
    assert (result.states, result.transitions) == (138, 244)
    run = result.blocking.run
    assert isinstance(run, txlib.Run) and run.outcome == "blocked"
    assert "coordinator" in run.down and run.violations == ()
    stuck = [p for p in run.participants if run.decisions[p] is None and p not in run.down]
    assert stuck, "some live participant never decides"
    asks = [e for e in run.trace.of_kind("send") if e.message.type == "DECISION_REQ"]
    assert len(asks) > 2, "the replay goes on: the participant keeps asking in vain"
    assert result.blocking.reproduced is True


def test_blocking_agrees_with_a_forward_search_from_every_state():
    """Recount the blocking states of 2PC (2 participants, 1 crash) by brute force: from
    each reachable state, walk every ordinary event and see who can still decide."""
    result = explore("2pc", participants=2, max_crashes=1, progress=False)
    model = result.blocking.model
    states = {}
    todo = deque(model.initial())
    while todo:
        w = todo.popleft()
        key = model.fingerprint(w)
        if key in states:
            continue
        states[key] = w
        todo.extend(c for _, c in model.successors(w))
    assert len(states) == result.states

    def can_decide(w, p):
        seen, stack = set(), [w]
        while stack:
            v = stack.pop()
            if v.nodes[p].decision is not None:
                return True
            for action, c in model.successors(v):
                key = model.fingerprint(c)
                if not model.is_fault(action) and key not in seen:
                    seen.add(key)
                    stack.append(c)
        return False

    blocking = sum(
        1 for w in states.values()
        if any(w.nodes[p].up and w.nodes[p].decision is None and not can_decide(w, p)
               for p in ("p1", "p2")))
    assert blocking == result.blocking_states == 24


def test_2pc_without_faults_neither_breaks_nor_blocks():
    result = explore("2pc", participants=2, max_crashes=0, progress=False)
    assert result.ok and result.blocking_states == 0


@pytest.mark.parametrize("participants", [2, 3])
def test_3pc_with_crashes_only_neither_breaks_nor_blocks(participants):
    result = explore("3pc", participants=participants, max_crashes=1, progress=False)
    assert result.complete and result.ok
    assert result.violations == () and result.blocking is None and result.blocking_states == 0
    assert result.states > 300


def test_3pc_under_a_partition_breaks_atomicity_and_the_shortest_case_is_found():
    result = explore("3pc", participants=2, max_crashes=0, partitions=True, progress=False)
    found = result.violation("atomicity")
    assert found is not None and not result.complete and result.stopped_by == "a violation"
    assert found.depth == 11
    shorter = explore("3pc", participants=2, max_crashes=0, partitions=True,
                      max_depth=found.depth - 1, progress=False)
    assert shorter.violations == () and not shorter.complete
    assert shorter.stopped_by == f"max_depth={found.depth - 1}"
    assert any("network splits" in label for label in found.labels)
    run = found.run
    assert "atomicity" in {v.invariant for v in run.violations}
    assert run.outcome == "inconsistent" and run.trace.of_kind("partition")
    assert [f.kind for f in run.scenario.faults] == ["partition"]
    assert found.reproduced is True, "the timed scheduler shows it too"


def test_with_crashes_allowed_as_well_the_shortest_violation_is_shorter():
    result = explore("3pc", participants=2, max_crashes=1, partitions=True, progress=False)
    assert result.violation("atomicity").depth == 10


def test_3pc_with_a_crash_and_a_restart_is_safe():
    """The explorer once found a bug here: a participant restarting in READY took the
    live coordinator's PRECOMMIT for undecided, led the termination and aborted while the
    coordinator committed. A logged PRECOMMIT now counts as committable."""
    result = explore("3pc", participants=2, max_crashes=1, recoveries=True, progress=False)
    assert result.violations == (), result.violations[0].text()
    replay = txlib.Scenario("3pc", ("p1", "p2"), seed=26, faults=(
        txlib.crash("p1", at_step=5), txlib.recover("p1", at_step=7))).run()
    assert replay.outcome == "committed" and replay.violations == ()


def test_asynchronous_timeouts_break_3pc_without_any_fault():
    result = explore("3pc", participants=2, max_crashes=0, timeouts="asynchronous",
                     progress=False)
    assert result.violation("atomicity") is not None
    assert not any(isinstance(a, (Crash, CrashDuring, Drop, Partition)) for a in
                   result.violation("atomicity").path)
    safe = explore("2pc", participants=2, max_crashes=0, timeouts="asynchronous",
                   max_depth=10, progress=False, stop_on_violation=False)
    assert safe.violations == () and not safe.complete, "infinite: bounded by depth"


def test_a_coordinator_that_commits_without_every_vote_is_caught():
    result = explore(Eager2PC(), max_crashes=0, progress=False)
    found = result.violation("validity")
    assert found is not None and "had not voted YES" in found.reason
    assert "validity" in {v.invariant for v in found.run.violations}
    assert found.reproduced is None, "a variant is not the registered protocol"
    assert explore("2pc", max_crashes=0, progress=False).violations == ()


def test_a_participant_that_aborts_after_voting_yes_is_caught():
    broken = Impatient2PC()
    assert explore(broken, max_crashes=0, progress=False).ok, "silent without faults"
    result = explore(broken, max_crashes=1, progress=False)
    found = result.violation("atomicity")
    assert found is not None
    assert any(isinstance(a, CrashDuring) for a in found.path), "the coordinator dies mid-broadcast"
    assert "atomicity" in {v.invariant for v in found.run.violations}
    lost = explore(broken, max_crashes=0, max_drops=1, progress=False).violation("atomicity")
    assert lost is not None and any(isinstance(a, Drop) for a in lost.path)


def test_custom_invariants_and_counterexamples_in_every_view():
    def nobody_commits(world):
        return next((f"{n} committed" for n, s in world.nodes.items()
                     if s.decision == "commit"), None)

    result = explore("2pc", max_crashes=0, invariants=["atomicity", nobody_commits],
                     progress=False)
    found = result.violation("nobody_commits")
    assert found.reason == "coordinator committed" and found.depth == 5
    run = found.run
    assert run.steps == 5 and run.decisions["coordinator"] == "commit"
    model = LabModel(scenario=run.scenario, original=run.scenario, run=run)
    model.move(run.steps)
    assert model.index == len(run.trace) - 1
    svg = spacetime_svg(run.trace, step=run.steps, roles=run.roles)
    assert svg.startswith("<svg") and "PREPARE" in svg
    assert "after 5 steps" in outcome_html(run, run.steps)
    assert "coordinator receives YES from p" in found.text()


def test_explore_takes_a_scenario_and_its_faults():
    s = txlib.Scenario("2pc", ("p1", "p2"), faults=(txlib.vote_no("p2"),))
    result = explore(s, max_crashes=0, progress=False)
    assert result.ok
    with pytest.raises(txlib.TxlibError, match="ignores time"):
        explore(s.with_faults(txlib.crash("p1", at_time=10)))


def test_fifo_channels_and_restarts_are_explored():
    assert explore("2pc", reorder=False, progress=False).violations == ()
    restarts = explore("2pc", recoveries=True, progress=False)
    assert restarts.violations == () and restarts.states > 138
    model = restarts.blocking.model
    world = model.initial()[0]
    crashed = dict(model.successors(world))[Crash("p1")]
    assert Recover("p1") in dict(model.successors(crashed))
    assert Crash("p2") not in dict(model.successors(crashed)), "one crash only"


# --- budgets, progress and errors ---------------------------------------------------------
def test_budgets_stop_cleanly_and_say_the_search_is_incomplete():
    capped = explore("3pc", participants=3, max_states=100, progress=False)
    assert not capped.complete and capped.stopped_by == "max_states=100"
    assert 100 <= capped.states < 200 and capped.blocking_states is None
    assert "INCOMPLETE" in capped.summary() and "not analysed" in capped.summary()
    timed = explore("3pc", participants=3, max_seconds=0.001, progress=False)
    assert not timed.complete and timed.stopped_by == "max_seconds=0.001"


def test_progress_is_reported_while_searching():
    seen = []

    class Recorder(SearchProgress):
        def update(self, states, transitions, frontier, depth, elapsed):
            seen.append((states, frontier, depth))

        def close(self):
            seen.append("closed")

    explore("3pc", participants=3, progress=Recorder())
    assert seen[-1] == "closed" and len(seen) > 3
    states = [s for s, _, _ in seen[:-1]]
    assert states == sorted(states) and states[-1] > states[0]
    bar = RichProgress("3pc", max_states=1000, max_seconds=None, delay=0.0)
    bar.update(500, 900, 40, 7, 0.5)
    assert bar._bar is not None
    html = bar._render_html()  # what a notebook shows
    assert "500 states" in html and "1,000/s" in html and "frontier 40" in html
    assert "0:00:00" in html
    bar.update(600, 1000, 40, 7, 65.5)  # the search's time, not the bar's
    assert "0:01:05" in bar._render_html()
    bar.close()
    assert bar._bar is None
    quiet = RichProgress("3pc", max_states=None, max_seconds=None, delay=10.0)
    quiet.update(5, 9, 4, 1, 0.5)
    assert quiet._bar is None, "nothing shows for a short search"


class _Handle:
    """A stand-in for IPython's DisplayHandle: what the display was updated to."""

    def __init__(self) -> None:
        self.updates: list[tuple[Any, dict[str, Any]]] = []

    def update(self, obj: Any, **kwargs: Any) -> None:
        self.updates.append((obj, kwargs))


def test_a_notebooks_progress_bar_leaves_nothing_in_the_saved_outputs(monkeypatch):
    """In a notebook the bar is a widget displayed as its view alone, and its display is
    emptied at the end: before, it was displayed with its text fallback, so a saved
    notebook kept ``HTML(value='')`` (and nbval saw an output that depends on timing)."""
    import IPython.display

    shown: list[tuple[Any, dict[str, Any]]] = []
    handle = _Handle()

    def display(obj: Any, **kwargs: Any) -> _Handle:
        shown.append((obj, kwargs))
        return handle

    monkeypatch.setattr(search_module, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    bar = RichProgress("3pc", max_states=None, max_seconds=None, delay=0.0)
    bar.update(500, 900, 40, 7, 0.5)
    [(bundle, kwargs)] = shown
    widget = bar._html
    assert bundle == {search_module.WIDGET_VIEW: {"version_major": 2, "version_minor": 0,
                                                  "model_id": widget.model_id}}
    assert kwargs == {"raw": True, "display_id": True}
    assert "500 states" in widget.value
    bar.close()
    assert handle.updates == [({}, {"raw": True})], "the display is emptied"
    assert widget.comm is None, "and the widget closed"


def test_the_bar_leaves_out_memory_where_the_platform_cannot_say(monkeypatch):
    """Pyodide's ``resource`` module has no ``getrusage``: the bar raised AttributeError
    in the browser build (found by the browser test), so a search there failed."""
    import resource

    assert "MB" in search_module._memory()
    monkeypatch.delattr(resource, "getrusage")
    assert search_module._memory() == ""
    bar = RichProgress("3pc", max_states=None, max_seconds=None, delay=0.0)
    bar.update(500, 900, 40, 7, 0.5)
    assert "500 states" in bar._render_html() and "MB" not in bar._render_html()
    bar.close()


def test_the_browsers_pyodide_kernel_counts_as_a_notebook(monkeypatch):
    """rich does not recognise the Pyodide kernel of the course's JupyterLite site, where
    searches are slowest; without a shell it is no notebook."""
    import IPython

    monkeypatch.setattr(sys, "platform", "emscripten")
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    assert search_module.in_notebook() and search_module.interactive()
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert not search_module.in_notebook()
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    assert not search_module.in_notebook(), "a plain Python with IPython imported"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"timeouts": "sometimes"}, "timeouts"),
    ({"invariants": ["atomcity"]}, "invariant"),
    ({"loss": 0.1}, "max_drops"),
    ({"max_crashes": -1}, "max_crashes"),
    ({"max_states": 1.5}, "max_states"),
    ({"partitions": "yes"}, "partitions"),
])
def test_bad_arguments_are_refused_clearly(kwargs, match):
    with pytest.raises(txlib.TxlibError, match=match):
        explore("2pc", progress=False, **kwargs)


def test_explored_worlds_keep_no_trace_and_replays_are_ordinary_worlds():
    model = explore("2pc", max_crashes=0, progress=False)
    assert model.states == 18
    found = explore("2pc", max_crashes=0, invariants=[lambda w: "x" if w.started else None],
                    progress=False).violations[0]
    wm = found.model
    assert isinstance(wm, WorldModel)
    assert type(wm.replay(found.path)) is World
    explored = wm.initial()[0]
    assert isinstance(explored, ExploredWorld) and explored.trace is None


# --- every registered protocol, with its own nodes and invariants ---------------------------
# How to break each protocol with a small fault budget, and what its own invariants (or
# the blocking analysis) then report. A protocol registered without an entry here fails
# the test below on purpose: say how the explorer should catch its failures.
BREAKS: dict[str, tuple[dict, str]] = {
    "2pc": ({"max_crashes": 1}, "blocking"),
    "3pc": ({"max_crashes": 0, "partitions": True}, "atomicity"),
    "naive": ({"max_crashes": 0}, "validity"),
    # Safe under everything; it waits only when a majority of acceptors is gone: with
    # one acceptor (F = 0), losing it blocks. (Explored with one ballot per node, its
    # explore_options; see tests/test_explore_paxos_commit.py.)
    "paxos-commit": ({"participants": 1, "acceptors": 1, "max_crashes": 1}, "blocking"),
    "saga": ({"max_crashes": 1}, "semantic atomicity"),  # a service dies after its commit
    "saga-choreography": ({"max_crashes": 1, "outbox": False}, "lost event"),
    "tcc": ({"max_crashes": 0, "max_drops": 1, "barrier": False}, "no null compensation"),
}


def model_of(name: str, **budget) -> WorldModel:
    proto = get_protocol(name)
    commit = isinstance(proto, CommitProtocol)
    scenario = txlib.Scenario(name, ("p1", "p2") if commit else ())
    config = proto.make_config(scenario.participants, scenario.options)
    return WorldModel(proto, scenario, config, max_crashes=budget.get("max_crashes", 0),
                      max_drops=0, partitions=False, recoveries=False, timeouts="synchronous")


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_every_protocol_is_explored_with_all_of_its_nodes(name):
    model = model_of(name)
    roster = model.scenario.roster
    assert len(roster.names) > 2
    assert model.nodes == roster.names and model.participants == roster.deciders
    assert tuple(model.initial()[0].nodes) == roster.names
    result = explore(name, max_crashes=0, max_states=300, progress=False)
    assert result.depth >= 2, "the nodes answer each other after the start"
    assert result.blocking_checked == bool(roster.deciders)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_what_breaks_each_protocol_is_found_by_its_own_invariants(name):
    assert name in BREAKS, f"say in BREAKS how the explorer breaks {name!r}"
    budget, invariant = BREAKS[name]
    result = explore(name, progress=False, **budget)
    if invariant == "safe":
        assert result.violations == () and result.states > 100, result.summary()
        return
    if invariant == "blocking":
        assert result.violations == () and result.blocking is not None
        assert result.blocking.run.outcome == "blocked"
        return
    found = result.violation(invariant)
    assert found is not None, result.summary()
    assert invariant in {v.invariant for v in found.run.violations}, "the replay agrees"
    assert found.reproduced is True, "and so does the timed scheduler"


@pytest.mark.parametrize(("name", "budget"), [
    ("tcc", {"max_crashes": 0, "max_drops": 1}),  # the barrier refuses a null compensation
    ("saga", {"max_crashes": 0, "max_drops": 3, "register_compensation": "before"}),
])
def test_the_same_faults_break_nothing_where_the_protocol_guards_against_them(name, budget):
    result = explore(name, progress=False, **budget)
    assert result.complete and result.violations == (), result.summary()


def test_a_saga_loses_a_step_when_every_reply_is_lost_and_compensation_comes_after():
    found = explore("saga", max_crashes=0, max_drops=3, progress=False).violation(
        "semantic atomicity")
    assert found is not None and "never compensated" in found.reason
    assert sum(isinstance(a, Drop) for a in found.path) == 3


def test_a_choreography_checks_lost_events_only_with_nothing_in_flight():
    """An event on its way to the broker is not lost: without a crash nothing is."""
    safe = explore("saga-choreography", max_crashes=0, outbox=False, max_states=2000,
                   progress=False)
    assert safe.violations == ()
    lost = explore("saga-choreography", max_crashes=1, outbox=False,
                   progress=False).violation("lost event")
    assert any(isinstance(a, CrashDuring) for a in lost.path)


def test_a_protocol_that_judges_only_with_a_trace_is_refused():
    class TraceOnly(TryConfirmCancel):
        def violations(self, history):
            if history.events is None:
                raise txlib.TxlibError("this check reads the trace")
            return super().violations(history)

    with pytest.raises(txlib.TxlibError, match=r"cannot check tcc: its violations\(\) failed "
                                               r"on the initial state \(TxlibError: this "
                                               r"check reads the trace\); an explored state "
                                               r"keeps no trace"):
        explore(TraceOnly(), progress=False)

    class Untidy(TryConfirmCancel):  # reads the trace without checking it is there
        def violations(self, history):
            return [e for e in history.events if e.kind == "nothing"]

    with pytest.raises(txlib.TxlibError, match=r"cannot check tcc: its violations\(\) failed "
                                               r"on the initial state \(TypeError: "):
        explore(Untidy(), progress=False)


def test_other_protocols_take_all_their_own_invariants_and_extra_functions():
    with pytest.raises(txlib.TxlibError, match="all of its own invariants"):
        explore("saga", invariants=["atomicity"], progress=False)
    with pytest.raises(txlib.TxlibError, match="invariant"):
        explore("2pc", invariants=["semantic atomicity"], progress=False)

    def nothing_shipped(world):
        return "shipped" if world.nodes["shipping"].log else None

    result = explore("saga", max_crashes=0, invariants=[nothing_shipped], progress=False)
    assert [f.invariant for f in result.violations] == ["nothing_shipped"]
    assert result.violations[0].reproduced is None, "a timed run cannot judge a custom check"


# --- TLA+ models -------------------------------------------------------------------------
def brute_force(init: dict, successors) -> tuple[int, int, int]:
    """Distinct states, states generated and depth as TLC counts them (depth: states on
    the longest shortest path), by a plain breadth-first walk over hashable states."""
    key = lambda s: frozenset(s.items())  # noqa: E731
    level = {key(init): init}
    seen = set(level)
    generated, depth = 1, 1
    while level:
        following = {}
        for s in level.values():
            for t in successors(s):
                generated += 1
                if key(t) not in seen:
                    seen.add(key(t))
                    following[key(t)] = t
        if following:
            depth += 1
        level = following
    return len(seen), generated, depth


def tcommit_next(rms):
    """TCNext, written again straight from TCommit.tla."""
    def successors(s):
        can_commit = all(s[r] in ("prepared", "committed") for r in rms)
        not_committed = all(s[r] != "committed" for r in rms)
        for rm in rms:
            if s[rm] == "working":
                yield {**s, rm: "prepared"}
            if s[rm] == "prepared" and can_commit:
                yield {**s, rm: "committed"}
            if s[rm] in ("working", "prepared") and not_committed:
                yield {**s, rm: "aborted"}
    return successors


def twophase_next(rms):
    """TPNext, written again straight from TwoPhase.tla, messages as a set of records."""
    commit, abort = frozenset({("type", "Commit")}), frozenset({("type", "Abort")})

    def prepared(rm):
        return frozenset({("type", "Prepared"), ("rm", rm)})

    def successors(s):
        rm_state, msgs = s["rmState"], s["msgs"]
        if s["tmState"] == "init" and s["tmPrepared"] == frozenset(rms):
            yield {**s, "tmState": "committed", "msgs": msgs | {commit}}
        if s["tmState"] == "init":
            yield {**s, "tmState": "aborted", "msgs": msgs | {abort}}
        for rm in rms:
            if s["tmState"] == "init" and prepared(rm) in msgs:
                yield {**s, "tmPrepared": s["tmPrepared"] | {rm}}
            if dict(rm_state)[rm] == "working":
                yield {**s, "rmState": rm_state - {(rm, "working")} | {(rm, "prepared")},
                       "msgs": msgs | {prepared(rm)}}
                yield {**s, "rmState": rm_state - {(rm, "working")} | {(rm, "aborted")}}
            if commit in msgs:
                yield {**s, "rmState": frozenset(
                    (r, "committed" if r == rm else v) for r, v in rm_state)}
            if abort in msgs:
                yield {**s, "rmState": frozenset(
                    (r, "aborted" if r == rm else v) for r, v in rm_state)}
    return successors


def test_tla_models_give_tlcs_state_counts():
    for model, name in ((TCommit(3), "TCommit"), (TwoPhase(3), "TwoPhase")):
        result = check(model)
        tlc = TLC_COUNTS[(name, 3)]
        assert result.complete and result.violations == ()
        assert result.states == tlc["distinct"]
        assert result.transitions + result.initial_states == tlc["generated"]
        assert result.depth + 1 == tlc["depth"]
    assert check(TwoPhase(6)).states == TLC_COUNTS[("TwoPhase", 6)]["distinct"] == 50816


@pytest.mark.parametrize("n", [2, 3, 4])
def test_tla_counts_match_an_independent_brute_force_enumeration(n):
    rms = [f"r{i}" for i in range(1, n + 1)]
    tc = brute_force({r: "working" for r in rms}, tcommit_next(rms))
    tp_init = {"rmState": frozenset((r, "working") for r in rms), "tmState": "init",
               "tmPrepared": frozenset(), "msgs": frozenset()}
    two = brute_force(tp_init, twophase_next(rms))
    for (distinct, generated, depth), model in ((tc, TCommit(n)), (two, TwoPhase(n))):
        result = check(model)
        assert (result.states, result.transitions + 1, result.depth + 1) == (
            distinct, generated, depth)
    if n == 3:
        assert tc == (34, 94, 7) and two == (288, 1146, 11)


def test_tla_invariants_catch_a_broken_spec_and_twophase_refines_tcommit():
    class HastyTCommit(TCommit):
        """Decide(rm) commits without checking canCommit."""

        def successors(self, s):
            yield from super().successors(s)
            for i, x in enumerate(s):
                if x == "prepared":
                    yield ("Commit", i), (*s[:i], "committed", *s[i + 1:])

    bad = check(HastyTCommit(2)).violation("TCConsistent")
    assert bad is not None and bad.depth == 3
    assert refinement_violations(3) == [] and refinement_violations(4) == []


# --- the fault grid and "can it get worse?" -------------------------------------------------
def test_the_2pc_grid_shows_where_a_single_fault_blocks():
    grid = fault_grid(txlib.Scenario("2pc", ("p1", "p2")))
    assert grid.steps == tuple(range(grid.base.steps + 1))
    assert grid.columns[:3] == ("crash coordinator", "crash p1", "crash p2")
    assert grid.cell(4, "crash coordinator").outcome == "blocked"  # it has a YES, no decision
    assert grid.cell(5, "crash coordinator").outcome == "committed"  # COMMIT already sent
    assert grid.cell(0, "crash coordinator").outcome == "aborted"
    assert grid.cell(1, "drop → p1").fault.kind == "drop"
    assert grid.cell(0, "drop → p1").fault is None
    counts = grid.counts()
    assert counts["blocked"] > 0 and counts["inconsistent"] == 0
    text = grid.text()
    assert "crash coordinator" in text and "= blocked" in text
    assert "<table" in grid.html() and "⏸" in grid.html()
    cell = grid.cell(4, "crash coordinator")
    assert cell.run.outcome == "blocked" and cell.scenario.faults[-1].at_step == 4


def test_the_3pc_grid_never_blocks_or_breaks_with_one_crash_or_loss():
    grid = fault_grid("3pc-happy")
    assert set(grid.counts()) <= {"committed", "aborted"} and grid.counts()["aborted"] > 0


def test_clicking_a_grid_cell_opens_its_run_in_the_lab():
    grid = fault_grid(txlib.Scenario("2pc", ("p1", "p2")), drops=False)
    view = grid.widget()
    buttons = [b for b in view.children[1].children if hasattr(b, "on_click")]
    assert len(buttons) == sum(1 for row in grid.cells for c in row if c.fault)
    below = view.children[-1]
    assert below.children == ()
    next(b for b in buttons if b.description == "⏸").click()
    (opened,) = below.children
    assert "2PC" in opened.children[0].value, "the lab's title"
    assert "crash coordinator" in view.children[3].value and "blocked" in view.children[3].value
    chosen = []
    grid.widget(on_select=chosen.append).children[1].children[-1].click()
    assert chosen and chosen[0].step == grid.steps[-1]
    assert isinstance(Lab(chosen[0].scenario).widget.children[0].value, str)


def test_worse_finds_the_fewest_faults_that_block_or_break():
    found = find_worse("2pc-happy")
    assert found is not None and found.run.outcome == "blocked" and len(found.faults) == 1
    s = worse("2pc-happy")
    assert s.run().outcome == "blocked", "the plan reproduces the run under the timed scheduler"
    assert s.faults[-1].kind == "crash" and s.faults[-1].node == "coordinator"
    assert "Can it get worse? Yes" in s.description
    split = worse("3pc-happy")
    assert split.run().outcome == "inconsistent" and split.faults[-1].kind == "partition"
    assert worse("3pc-happy", kinds=("crash",)) is None, "3PC survives any one crash"
    assert worse("2pc-coordinator-crash-blocks") is None, "2PC blocks but never disagrees"
    assert worse("3pc-partition-split") is None, "already broken: nothing is worse"
    with pytest.raises(txlib.TxlibError, match="budget"):
        worse("2pc-happy", budget=0)


def test_explore_and_fault_grid_are_exported():
    assert txlib.explore is explore and txlib.fault_grid is fault_grid
    assert {"explore", "fault_grid"} <= set(txlib.__all__)


def test_an_explored_state_space_is_counted_the_same_way_every_time():
    runs = [explore("3pc", participants=2, partitions=True, max_crashes=0,
                    stop_on_violation=False, progress=False) for _ in range(2)]
    assert {(r.states, r.transitions, r.depth) for r in runs} == {(1527, 2920, 19)}
    assert deque(runs[0].violations[0].labels) == deque(runs[1].violations[0].labels)


@pytest.mark.parametrize("name", ["saga-happy", "choreo-happy", "tcc-happy", "2pc-happy"])
def test_the_fault_grid_shows_every_protocols_outcomes(name):
    """Each protocol names its outcomes and their kind; the grid draws them all (sagas
    and TCC raised KeyError on 'stuck' and 'cancelled' before)."""
    grid = fault_grid(txlib.scenario(name), max_steps=3)
    protocol = txlib.protocols.get_protocol(grid.scenario.protocol)
    assert set(grid.counts()) <= set(protocol.outcomes)
    text, html = grid.text(), grid.html()
    for outcome in protocol.outcomes:
        assert outcome in text and outcome in html
    assert grid.widget() is not None and grid.table() is not None


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"max_seconds": float("nan")}, "nan"),
    ({"max_seconds": float("inf")}, "inf"),
    ({"max_seconds": 0}, "0"),
    ({"progress": "yes"}, "'yes'"),
    ({"participants": 64, "max_states": 10}, "64"),
    ({"max_states": -1}, "-1"),
    ({"max_crashes": "1"}, "'1'"),
    ({"timeouts": "sometimes"}, "'sometimes'"),
    ({"invariants": [5]}, "5"),
])
def test_bad_explorer_arguments_are_named(kwargs, fragment):
    with pytest.raises(txlib.TxlibError) as info:
        explore("2pc", **kwargs)
    assert fragment in str(info.value)


def test_a_search_stops_at_its_state_budget_exactly_and_says_so():
    result = explore("3pc", participants=3, max_states=50, progress=False)
    assert result.states == 50 and not result.complete
    assert "max_states=50" in result.summary()
    default = explore("3pc", participants=3, max_crashes=2, recoveries=True, partitions=True,
                      max_states=None, progress=False, stop_on_violation=False,
                      max_seconds=0.5)
    assert not default.complete


def test_the_default_budget_is_a_reported_incomplete_search(monkeypatch):
    from txlib.explorer import worlds

    monkeypatch.setattr(worlds, "DEFAULT_MAX_STATES", 123)
    result = explore("2pc", participants=4, progress=False)
    assert result.states == 123 and not result.complete
    assert "max_states=123" in result.summary()


def test_an_invariant_that_raises_is_named():
    def broken(world):
        raise KeyError("nope")

    with pytest.raises(txlib.TxlibError, match="invariant broken raised KeyError"):
        explore("2pc", invariants=[broken], max_crashes=0, progress=False)


def test_can_it_get_worse_reports_its_runs_without_changing_what_it_finds(monkeypatch):
    import txlib.explorer.worse as worse_module

    plain = worse_module.search_worse("2pc-happy")
    monkeypatch.setattr(worse_module, "PROGRESS_EVERY", 0.0)  # report after every run
    told: list[int] = []
    reported = worse_module.search_worse("2pc-happy", progress=told.append)
    assert told == list(range(1, reported.runs + 1))
    assert reported.found is not None and plain.found is not None
    assert (reported.found.faults, reported.runs, reported.steps) == (
        plain.found.faults, plain.runs, plain.steps)
    with pytest.raises(txlib.TxlibError, match="progress must be a function"):
        worse_module.search_worse("2pc-happy", progress=3)


def test_can_it_get_worse_judges_its_candidates_without_volatile_states() -> None:
    """The search's candidate runs skip the nodes' volatile states (they are only
    judged); the run it returns is replayed with them, as the lab shows it."""
    from txlib.explorer.worse import find_worse

    base = txlib.scenario("2pc-happy")
    lean = base.run(volatile=False)
    full = base.run()
    assert not lean.trace.volatile and full.trace.volatile
    assert [e.kind for e in lean.trace] == [e.kind for e in full.trace]
    assert lean.outcome == full.outcome and lean.violations == full.violations
    found = find_worse(base)
    assert found is not None and any(found.run.trace.volatile)
    again = found.scenario.run()
    assert [e.kind for e in found.run.trace] == [e.kind for e in again.trace]


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_remembered_node_transitions_give_each_node_the_part_it_has(name, monkeypatch):
    """The explorer numbers a node's part after a delivery or a timeout from the
    (part, message) pairs it met before; with the check on, every such number is
    compared with the node's actual part, for every protocol, with crashes, restarts
    and a partition (the check raises on any difference)."""
    monkeypatch.setattr(WorldModel, "check_local", True)
    budget = {"max_crashes": 1, "recoveries": True, "partitions": True}
    checked = explore(name, max_states=4000, stop_on_violation=False, progress=False,
                      **budget)
    monkeypatch.setattr(WorldModel, "check_local", False)
    fast = explore(name, max_states=4000, stop_on_violation=False, progress=False, **budget)
    assert (fast.states, fast.transitions) == (checked.states, checked.transitions)
    assert checked.states > 100


@pytest.mark.parametrize(("name", "options"), [
    ("2pc", {"max_drops": 1, "timeouts": "asynchronous", "max_depth": 12}),
    ("3pc", {"participants": 3, "max_crashes": 2, "recoveries": True}),
    ("paxos-commit", {"participants": 1, "max_drops": 1, "partitions": True}),
    ("3pc", {"participants": 2, "max_crashes": 2, "recoveries": True, "partitions": True}),
    ("3pc", {"invariants": [lambda w: None]}),  # judged on worlds, not on parts
])
def test_remembered_steps_hold_with_drops_two_crashes_and_own_invariants(
        name, options, monkeypatch):
    """The same check under the other fault kinds and search options."""
    monkeypatch.setattr(WorldModel, "check_local", True)
    checked = explore(name, max_states=3000, stop_on_violation=False, progress=False,
                      **options)
    monkeypatch.setattr(WorldModel, "check_local", False)
    fast = explore(name, max_states=3000, stop_on_violation=False, progress=False, **options)
    assert (fast.states, fast.transitions) == (checked.states, checked.transitions)
    assert [v.path for v in fast.violations] == [v.path for v in checked.violations]
    assert checked.states > 100


def _count_schedules(monkeypatch) -> list[int]:
    """Count the states expanded from their schedules (without their worlds)."""
    expanded = [0]
    original = WorldModel._expand_schedule

    def counted(self, s):
        expanded[0] += 1
        return original(self, s)

    monkeypatch.setattr(WorldModel, "_expand_schedule", counted)
    return expanded


@pytest.mark.parametrize("name", ["2pc", "3pc", "paxos-commit"])  # judged by parts
@pytest.mark.parametrize("budget", [{"max_crashes": 0}, {"max_crashes": 1},
                                    {"max_crashes": 1, "recoveries": True,
                                     "timeouts": "asynchronous", "max_depth": 12}])
def test_states_with_no_fault_left_are_expanded_from_their_schedules_exactly(
        name, budget, monkeypatch):
    """Once no fault is left to make, a state is expanded from its schedule (its queue
    entries, timer tokens, time, node parts and ghost) without its world. With the
    check on, every such state's world is rebuilt as well and compared with the
    schedule, and every remembered step is taken and compared; the search's figures
    and findings are those of the search without the check."""
    expanded = _count_schedules(monkeypatch)
    monkeypatch.setattr(WorldModel, "check_local", True)
    size = 2 if "recoveries" in budget else 3
    checked = explore(name, participants=size, max_states=5000, stop_on_violation=False,
                      progress=False, **budget)
    assert expanded[0] > 10  # the schedules were used, and checked
    monkeypatch.setattr(WorldModel, "check_local", False)
    fast = explore(name, participants=size, max_states=5000, stop_on_violation=False,
                   progress=False, **budget)
    assert (fast.states, fast.transitions, fast.depth, fast.blocking_states) == (
        checked.states, checked.transitions, checked.depth, checked.blocking_states)
    assert [v.path for v in fast.violations] == [v.path for v in checked.violations]


@pytest.mark.parametrize(("name", "budget"), [
    ("2pc", {"participants": 3, "max_crashes": 1}),
    ("3pc", {"participants": 3, "max_crashes": 2}),
    ("3pc", {"participants": 2, "max_crashes": 1, "max_drops": 1}),
    ("paxos-commit", {"participants": 1, "max_crashes": 1, "partitions": True}),
    ("2pc", {"participants": 2, "max_crashes": 1, "timeouts": "asynchronous",
             "max_depth": 14}),
    ("3pc", {"participants": 2, "max_crashes": 2, "recoveries": True}),
    ("2pc", {"participants": 3, "max_crashes": 1, "recoveries": True, "cooperative": True}),
    ("paxos-commit", {"participants": 1, "max_crashes": 1, "recoveries": True}),
])
def test_states_that_may_still_crash_a_node_search_as_their_worlds_do(name, budget,
                                                                      monkeypatch):
    """A state with crashes or restarts left to make (and no other fault, a whole
    network) is kept as its schedule too, its crashes, between steps and in the middle
    of one, and its restarts predicted from what they did before. The search is the
    one that expands such states from their worlds: the same states, transitions,
    depth, blocking states and violations, found by the same paths."""
    crashes_left = [0]
    original = WorldModel._expand_schedule

    def counted(self, s):
        crashes_left[0] += (s.used.crashes < self.max_crashes
                            or s.used.restarts < s.used.crashes)
        return original(self, s)

    monkeypatch.setattr(WorldModel, "_expand_schedule", counted)
    fast = explore(name, max_states=6000, stop_on_violation=False, progress=False, **budget)
    assert crashes_left[0] > 10, "states that may still crash were kept as schedules"
    monkeypatch.setattr(WorldModel, "schedulable", WorldModel.fault_free)
    worlds = explore(name, max_states=6000, stop_on_violation=False, progress=False,
                     **budget)
    assert (fast.states, fast.transitions, fast.depth, fast.blocking_states) == (
        worlds.states, worlds.transitions, worlds.depth, worlds.blocking_states)
    assert [(v.invariant, v.path) for v in fast.violations] == [
        (v.invariant, v.path) for v in worlds.violations]
    assert (fast.blocking is None) == (worlds.blocking is None)
    if fast.blocking is not None and worlds.blocking is not None:
        assert fast.blocking.path == worlds.blocking.path


@pytest.mark.parametrize("fault", [CrashDuring, Crash, Recover])
def test_the_check_catches_a_crash_predicted_wrongly_without_its_world(fault, monkeypatch):
    """From a state kept as its schedule, a crash in the middle of a step, one between
    steps and a restart are predicted without the state's world; with the check on,
    each is also taken in the world rebuilt and compared (here a prediction made wrong
    on purpose, only where the parent is a schedule, is caught)."""
    monkeypatch.setattr(WorldModel, "check_local", True)
    method = "crash" if fault is Crash else "predict"
    right = getattr(Memo, method)

    def wrong(self, w, base, parent, event, *args):
        predicted = right(self, w, base, parent, event, *args)
        if isinstance(w, schedule.Schedule) and isinstance(event, fault):
            predicted.digest += 1
        return predicted

    monkeypatch.setattr(Memo, method, wrong)
    with pytest.raises(AssertionError, match=r"(crashes|restarts).* was predicted wrongly"):
        explore("2pc", participants=3, max_crashes=1, recoveries=fault is Recover,
                progress=False)


@pytest.mark.parametrize("check", [False, True])
def test_a_crash_before_the_start_still_lets_the_world_start(check, monkeypatch):
    """A crash between steps is predicted once its node's part has crashed before,
    and a state with no fault left is kept as a schedule, whose events are
    deliveries and timeouts only. A world that has not started is neither: after a
    crash before the start (met twice), the state still begins with the start."""
    monkeypatch.setattr(WorldModel, "check_local", check)
    model = model_of("3pc", max_crashes=1)
    (initial,) = model.initial()
    for _ in range(2):
        for action, child in model.expand(initial):
            if isinstance(action, Crash):
                state = model.restore(model.store(model.materialize(child)))
                assert [type(a).__name__ for a, _ in model.expand(state)][:1] == ["Start"]


@pytest.mark.parametrize(("prediction", "match", "protocol", "faults"), [
    ("lost", "node that is down", "2pc", {}),  # a message to a crashed node: lost
    ("crash", "crashes was predicted wrongly", "3pc", {}),  # a crash between steps
    ("crash", "crashes was predicted wrongly", "3pc", {"partitions": True}),  # cut off
    ("network_fault", "network splits.*was predicted wrongly", "3pc",
     {"partitions": True}),
    ("network_fault", "the network loses .* was predicted wrongly", "3pc", {"max_drops": 1}),
])
def test_the_check_catches_a_prediction_made_wrong(prediction, match, protocol, faults,
                                                   monkeypatch):
    """A message to a crashed node is predicted as lost, a crash between steps from
    the part of the node that crashes (under a partition too), and a partition from
    its sides; with the check on, each such prediction is also taken and compared
    (here a prediction made wrong on purpose is caught)."""
    monkeypatch.setattr(WorldModel, "check_local", True)
    right = getattr(Memo, prediction)

    def wrong(self, *args):
        predicted = right(self, *args)
        predicted.digest += 1
        return predicted

    monkeypatch.setattr(Memo, prediction, wrong)
    if faults.get("partitions"):  # only the predictions made under a partition are wrong
        monkeypatch.setattr(Memo, prediction, lambda self, w, *args: (
            wrong if w.partition is not None or prediction != "crash" else right)(
                self, w, *args))
    with pytest.raises(AssertionError, match=match):
        explore(protocol, participants=2, max_crashes=1, progress=False, **faults)


def test_the_check_catches_a_restart_predicted_wrongly(monkeypatch):
    """A restart is predicted from what a restart did before from the same part of the
    node (its durable log); with the check on it is also taken and compared (here a
    prediction made wrong on purpose is caught)."""
    monkeypatch.setattr(WorldModel, "check_local", True)
    right = Memo.predict

    def wrong(self, w, base, parent, event, *args):
        predicted = right(self, w, base, parent, event, *args)
        if isinstance(event, Recover):
            predicted.digest += 1
        return predicted

    monkeypatch.setattr(Memo, "predict", wrong)
    with pytest.raises(AssertionError, match="restarts was predicted wrongly"):
        explore("3pc", participants=2, max_crashes=1, recoveries=True, progress=False)


def test_the_check_catches_a_step_learned_wrongly_without_its_world(monkeypatch):
    """A step met first in a state kept as its schedule is learned in a stand-in
    world; with the check on it is also taken in the state's own world and compared
    (here a stand-in made to learn something else is caught)."""
    monkeypatch.setattr(WorldModel, "check_local", True)
    right = Memo.learn_at

    def wrong(self, *args):
        return right(self, *args)._replace(after=10**6)

    monkeypatch.setattr(Memo, "learn_at", wrong)
    with pytest.raises(AssertionError, match="did something else without its world"):
        explore("3pc", participants=2, max_crashes=0, progress=False)


def test_the_schedule_check_catches_a_wrong_schedule(monkeypatch):
    """The check is not vacuous: a schedule whose time is not advanced to the due time
    of the entry it took (so later due times, and the order of the heap, go wrong) is
    reported."""
    monkeypatch.setattr(WorldModel, "check_local", True)
    right = schedule.advance

    def late(p, deciders):
        s = right(p, deciders)
        s.time += 1
        return s

    monkeypatch.setattr("txlib.explorer.worlds.advance", late)
    with pytest.raises(AssertionError, match="schedule differs from its world in time"):
        explore("3pc", participants=2, max_crashes=0, progress=False)


def test_the_node_transition_check_catches_a_wrong_memo(monkeypatch):
    """The check is not vacuous: a remembered transition that points at another part is
    reported."""
    monkeypatch.setattr(WorldModel, "check_local", True)
    model = model_of("2pc")
    model.memo.effects = _Wrong()
    with pytest.raises(txlib.TxlibError, match="two different"):
        todo = deque(model.initial())
        for _ in range(50):
            todo.extend(c for _, c in model.successors(todo.popleft()))


class _Wrong(dict):
    """A memo of node transitions that remembers every one as leading to part 10**6,
    sending nothing."""

    def get(self, key, default=None):
        return Effect(10**6, (), (), (), ())


class _Clocked(two_phase.Participant):
    """A participant that writes the time into its PREPARED record: what it does on a
    PREPARE depends on more than its state and the message."""

    record_types = two_phase.Participant.record_types | {"SEEN"}

    def on_PREPARE(self, ctx, msg):
        if ctx.state == "INIT":
            ctx.log("SEEN", forced=False, at=ctx.now)
        super().on_PREPARE(ctx, msg)


class _ClockedTwoPhase(two_phase.TwoPhaseCommit):
    participant_class = _Clocked


def test_a_handler_that_reads_the_time_is_caught_not_explored_wrongly():
    """Remembered steps rest on handlers that depend only on their node's state and the
    message; the search checks that as it goes, and says so plainly when it fails."""
    with pytest.raises(txlib.TxlibError, match=r"read the time \(ctx.now\)"):
        explore(_ClockedTwoPhase(), participants=3, max_crashes=1, max_drops=1,
                timeouts="asynchronous", max_depth=12, progress=False)


def test_a_handler_that_reads_the_time_is_caught_where_states_have_no_world():
    """The same check where every state after the start is expanded from its schedule
    (no fault to make): the steps it samples are taken from rebuilt worlds."""
    with pytest.raises(txlib.TxlibError, match=r"read the time \(ctx.now\)"):
        explore(_ClockedTwoPhase(), participants=3, max_crashes=0,
                timeouts="asynchronous", max_depth=12, progress=False)




def test_a_search_stops_before_the_machine_runs_out_of_memory(monkeypatch):
    """A search may grow by three quarters of the memory that was free when it started;
    past that it stops, incomplete, and says so (here the machine is made to look
    small, and each reading of the process's memory larger than the last)."""
    from txlib.engine import memory

    readings = iter(range(10**9, 10**13, 3 * 10**8))
    monkeypatch.setattr(memory, "memory_budget", lambda: 2 * 10**9)
    monkeypatch.setattr(memory, "resident_bytes", lambda: next(readings))
    cut = explore("3pc", participants=4, max_crashes=1, progress=False)
    assert not cut.complete and cut.stopped_by.startswith("memory=")
    assert "3/4 of what was free at its 1,024th state" in str(cut)
    monkeypatch.undo()
    whole = explore("3pc", participants=4, max_crashes=1, progress=False)
    assert whole.complete and cut.states < whole.states


def test_the_memory_budget_is_three_quarters_of_what_is_free(monkeypatch):
    from txlib.engine import memory

    monkeypatch.setattr(memory, "resident_bytes", lambda: 400)
    monkeypatch.setattr(memory, "memory_limit", lambda: 2000)
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    assert memory.memory_budget() == 400 + 1200
    monkeypatch.setattr(memory, "available_bytes", lambda: 800)  # others hold the rest
    assert memory.memory_budget() == 400 + 600
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    monkeypatch.setattr(memory, "memory_limit", lambda: 300)  # more held than the limit
    assert memory.memory_budget() == 400
    monkeypatch.setattr(memory, "memory_limit", lambda: None)  # the browser: no budget
    assert memory.memory_budget() is None
    monkeypatch.undo()
    held, limit, free = memory.resident_bytes(), memory.memory_limit(), memory.available_bytes()
    assert held is not None and limit is not None and free is not None, "Linux says all three"
    assert 0 < held < limit and free > 0


def _worlds_left_to_the_collector(run) -> int:
    """How many worlds ``run()`` left for Python's cycle collector (a world that is not
    released keeps itself alive through its nodes' contexts)."""
    import gc

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run()
        gc.collect()
        return sum(isinstance(o, World) for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()


@pytest.mark.parametrize(("name", "options"), [
    ("3pc", {"participants": 2, "max_crashes": 1, "recoveries": True}),  # stand-in worlds
    ("2pc", {"max_crashes": 1}),  # a crash learned once, then predicted
    ("3pc", {"participants": 2, "max_crashes": 1, "partitions": True, "max_depth": 6}),
    ("3pc", {"participants": 2, "max_crashes": 1, "partitions": True, "max_states": 500}),
    ("paxos-commit", {"participants": 1, "max_crashes": 1}),
    ("saga", {"max_crashes": 1, "max_states": 3000}),
])
def test_a_search_releases_every_world_it_makes(name, options):
    """A search runs with the cycle collector paused, so a world it makes and drops
    without releasing stays in memory until the search ends (thousands of them in a
    search with restarts, before). Every world it makes, kept, compared, learned from
    or cut off by a budget, is released."""
    left = _worlds_left_to_the_collector(
        lambda: explore(name, stop_on_violation=False, progress=False, **options))
    assert left == 0


def test_explore_takes_a_run_or_a_saga_of_your_own_as_the_lab_does():
    """explore(run) searches from the run's scenario and explore(saga) from the saga's
    (both were 'unknown protocol' with the object's whole repr); a saga definition by
    itself names the call that explores it."""
    from txlib.sagas import get_saga

    saga = txlib.Saga("explored_own", services={"svc": {}})
    saga.step("a", service="svc", action=lambda ctx, state: {},
              compensation=lambda ctx, state: None)
    saga.step("b", service="svc", action=lambda ctx, state: {}, pivot=True)
    assert (explore(saga, max_crashes=1, progress=False).states
            == explore(saga.scenario(), max_crashes=1, progress=False).states)
    run = txlib.simulate("2pc", faults=[txlib.crash("p1", at_step=3)])
    whole = explore(run, max_crashes=1, progress=False)
    assert whole.states == explore(run.scenario, max_crashes=1, progress=False).states
    with pytest.raises(txlib.TxlibError, match=r"explore\('saga', saga='ecommerce'\)"):
        explore(get_saga("ecommerce"), progress=False)


@pytest.mark.parametrize("max_states", [2, 3, 7, 11, 50])
def test_a_search_stopped_by_its_budget_releases_every_successor_it_made(max_states):
    """A search stopped by max_states in the middle of a state's successors released the
    one it stopped at but left the rest of them to the collector (four worlds with
    max_states=7); whatever the budget, none is left."""
    left = _worlds_left_to_the_collector(lambda: explore(
        "2pc", max_crashes=1, max_states=max_states, stop_on_violation=False,
        progress=False))
    assert left == 0


def test_the_static_fault_grid_keeps_its_cells_apart():
    """The static table's headers ran together ('crash zürich crash 東京drop → ...') and its
    '·' cells sat left of the symbols: every cell is padded, every fault cell centred."""
    import re

    html = fault_grid("2pc-happy", max_steps=3).html()
    cells = re.findall(r"<t[hd][ >][^>]*>?", html)
    assert cells and all("padding:" in c for c in cells), [c for c in cells if "padding" not in c]
    dots = re.findall(r"<td[^>]*>·</td>", html)
    assert dots and all("text-align:center" in d for d in dots)

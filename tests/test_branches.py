"""Runs that add one fault to a scenario, sharing the steps before it (branch_runs), and
"can it get worse?" built on them: each run is the one its scenario gives from the
start, event for event, and the search gives the answer of one run after another."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import txlib
from txlib.engine.faultplan import FaultPlanState
from txlib.engine.faults import Fault, crash
from txlib.errors import TxlibError
from txlib.explorer.grid import severity
from txlib.explorer.worse import _bad_step, _candidates, find_worse, search_worse
from txlib.presets import scenario, scenarios
from txlib.protocols import PROTOCOLS
from txlib.simulation.branches import branch_runs
from txlib.simulation.run import Run
from txlib.simulation.scenario import Scenario

KINDS = ("crash", "drop", "partition")


def signature(run: Run) -> tuple[Any, ...]:
    """Everything a run holds that a fault could change, its whole trace included."""
    return (run.outcome, run.decisions, run.states, run.down, run.logs, run.locks,
            run.end_time, run.steps, run.stopped_by, run.unfired_faults, run.violations,
            tuple(run.trace), run.trace.volatile)


def sample(faults: list[Fault], every: int) -> list[Fault]:
    """Every ``every``-th candidate, each triggered crash, and the two earliest of each
    kind (a fault at the start runs from the start)."""
    firsts: dict[str, int] = {}
    out = []
    for i, f in enumerate(faults):
        firsts[f.kind] = firsts.get(f.kind, 0) + 1
        if i % every == 0 or f.when is not None or firsts[f.kind] <= 2:
            out.append(f)
    return out


def children_of(parent: Scenario, faults: list[Fault]) -> list[Scenario]:
    return [replace(parent, faults=(*parent.faults, f)) for f in faults]


@pytest.mark.parametrize("name", scenarios())
def test_each_branch_run_is_the_run_its_scenario_gives_from_the_start(name: str) -> None:
    """On every preset, with crashes after a step or in the middle of one, lost
    messages and partitions (and a child that is not its parent plus one fault, which
    runs from the start): the same trace, outcome, logs, faults that never fired..."""
    parent = scenario(name)
    every = list(_candidates(parent.run(volatile=False), 0, KINDS))
    faults = sample(every, every=max(41, len(every) // 100))
    children = [*children_of(parent, faults), replace(parent, seed=parent.seed + 1)]
    got = dict(branch_runs(parent, children))
    assert sorted(got) == list(range(len(children))), "each child runs exactly once"
    for i, child in enumerate(children):
        run = got[i]
        assert isinstance(run, Run), run
        assert signature(run) == signature(child.run(volatile=False)), child.faults[-1:]
        assert run.scenario is child


def test_a_branch_run_goes_on_from_a_parent_that_has_faults_of_its_own() -> None:
    """A second added fault (as the search's next level adds it) branches from a run
    that already has one, due at the same step or earlier."""
    base = scenario("2pc-happy")
    parent = base.with_faults(crash("p1", at_step=6))
    faults = [crash("coordinator", at_step=k) for k in (2, 5, 6, 7, 9)]
    faults += [crash("p2", when="p2 logs PREPARED"), crash("coordinator", at_step=10_000)]
    children = children_of(parent, faults)
    got = dict(branch_runs(parent, children))
    for i, child in enumerate(children):
        assert signature(got[i]) == signature(child.run(volatile=False))  # type: ignore[arg-type]
    last = got[6]
    assert isinstance(last, Run) and last.unfired_faults[-1][0] == faults[-1], "never fired"


def test_the_comparison_catches_a_fault_that_is_not_added_where_the_run_branches(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Broken on purpose: the added fault joins the plan but never waits for its
    moment. The runs then differ from their scenarios' (the test above would fail)."""

    def unarmed(self: FaultPlanState, fault: Fault) -> FaultPlanState:
        new = self.copy()
        new.add(fault)
        return new

    monkeypatch.setattr(FaultPlanState, "plus", unarmed)
    parent = scenario("2pc-happy")
    children = children_of(parent, [crash("coordinator", at_step=k) for k in (3, 4, 5)])
    got = dict(branch_runs(parent, children))
    assert all(signature(got[i]) != signature(c.run(volatile=False))  # type: ignore[arg-type]
               for i, c in enumerate(children))


def one_after_another(base: Scenario, max_runs: int) -> tuple[Any, ...] | None:
    """Can it get worse, one added fault, as the search was written before it ran its
    candidates in batches: each candidate run from the start, in order."""
    current = severity(base.run(volatile=False))
    best = None
    candidates = list(dict.fromkeys(_candidates(base.run(volatile=False), 0, KINDS)))
    for runs, fault in enumerate(candidates[:max_runs], start=1):
        run = replace(base, faults=(*base.faults, fault)).run(volatile=False)
        bad = severity(run)
        if bad > current:
            rank = (-bad, _bad_step(run, (fault,)), runs, fault)
            if best is None or rank[:3] < best[:3]:
                best = rank
    return best


@pytest.mark.parametrize(("name", "max_runs"), [
    ("2pc-happy", 3000), ("3pc-happy", 3000), ("3pc-happy", 40), ("saga-happy", 3000),
    ("2pc-coordinator-crash-blocks", 3000), ("paxos-commit-happy", 3000),
    ("paxos-commit-happy", 90), ("choreo-broker-crash-recovers", 200)])
def test_the_search_finds_what_one_run_after_another_finds(name: str, max_runs: int) -> None:
    base = scenario(name)
    expected = one_after_another(base, max_runs)
    found = find_worse(base, max_runs=max_runs, max_seconds=float("inf"))
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert (-found.severity, found.step) == expected[:2]
        assert found.faults == (expected[3],), "the first of the worst, earliest runs"


def test_a_search_stopped_by_its_run_limit_says_so() -> None:
    base = scenario("2pc-coordinator-crash-blocks")  # blocked; no single fault breaks it
    every = len(list(_candidates(base.run(volatile=False), 0, KINDS)))
    done = search_worse(base, max_runs=every, max_seconds=float("inf"))
    assert done.found is None and done.complete and done.runs == every
    cut = search_worse(base, max_runs=every - 1, max_seconds=float("inf"))
    assert cut.found is None and not cut.complete and cut.runs == every - 1
    assert search_worse("3pc-partition-split").complete, "already broken: nothing to try"


# --- every protocol, every fault kind and timing, a network that loses and delays ---
FAULT_KINDS = ("crash", "recover", "partition", "heal", "drop", "duplicate", "delay", "slow",
               "vote_no")


@st.composite
def a_fault(draw: st.DrawFn, nodes: tuple[str, ...], types: list[str],
            records: list[str]) -> Fault | None:
    """Any fault, with any timing: after a step (early ones included), at a time, on a
    node's action or any node's, or none (a message fault or mark then holds from the
    start). None where txlib refuses the combination."""
    how = draw(st.sampled_from(["at_step", "at_step", "at_time", "when", "when", "none"]))
    timing: dict[str, Any] = {}
    if how == "at_step":
        timing["at_step"] = draw(st.integers(0, 60))
    elif how == "at_time":
        timing["at_time"] = draw(st.integers(0, 500))
    elif how == "when":
        node = draw(st.sampled_from([*nodes, "any"]))
        logs: bool = bool(records) and draw(st.booleans())
        if logs:
            timing["when"] = f"{node} logs {draw(st.sampled_from(records))}"
        else:
            action = draw(st.sampled_from(["sends", "receives"]))
            timing["when"] = f"{node} {action} {draw(st.sampled_from(types))}"
    kind = draw(st.sampled_from(FAULT_KINDS))
    node = draw(st.sampled_from(nodes))
    pattern: dict[str, Any] = {"src": draw(st.sampled_from([None, *nodes])),
                               "count": draw(st.sampled_from([1, 2, None]))}
    message_type = draw(st.sampled_from([None, *types]))
    try:
        if kind in ("crash", "recover", "vote_no"):
            return getattr(txlib, kind)(node, **timing)  # type: ignore[no-any-return]
        if kind == "slow":
            return txlib.slow(node, draw(st.integers(1, 80)), **timing)
        if kind == "partition":
            group = draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=3, unique=True))
            return txlib.partition(group, **timing)
        if kind == "heal":
            return txlib.heal(**timing)
        if kind == "delay":
            return txlib.delay(draw(st.integers(1, 150)), message_type, **pattern, **timing)
        return getattr(txlib, kind)(message_type, **pattern, **timing)  # type: ignore[no-any-return]
    except TxlibError:
        return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.filter_too_much])
@given(data=st.data())
@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_a_branch_run_is_the_run_from_the_start_under_any_fault(protocol: str,
                                                              data: st.DataObject) -> None:
    """Whatever the protocol, the network (losses, copies, delays, FIFO or not), the
    parent's own faults and the added fault (any kind, any timing)."""
    options = {"loss": data.draw(st.sampled_from([0.0, 0.1])),
               "duplicate": data.draw(st.sampled_from([0.0, 0.1])),
               "delay": data.draw(st.sampled_from([0.0, 0.2])),
               "reorder": data.draw(st.booleans())}
    base = txlib.Scenario(protocol, seed=data.draw(st.integers(0, 10**6)), options=options)
    nodes = base.roster.names
    proto = base.protocol_entry
    config = proto.make_config(base.participants, base.options)
    types = sorted(proto.message_types(base.roster, config))
    records = sorted({e.detail.split(" ")[0] for e in base.run(volatile=False).trace
                      if e.kind == "log"})
    fault = a_fault(nodes, types, records)
    own = [f for f in data.draw(st.lists(fault, max_size=3)) if f is not None]
    try:
        parent = base.with_faults(*own)
        parent.run(volatile=False)
    except TxlibError:
        assume(False)  # a plan txlib refuses, or a run too long to record
    kept: list[Scenario] = []
    for f in data.draw(st.lists(fault, min_size=1, max_size=6)):
        if f is not None:
            with contextlib.suppress(TxlibError):  # a fault txlib refuses on this scenario
                kept.append(parent.with_faults(f))
    assume(kept)
    got = dict(branch_runs(parent, kept))
    assert sorted(got) == list(range(len(kept)))
    for i, child in enumerate(kept):
        try:
            expected: Any = signature(child.run(volatile=False))
        except TxlibError as exc:
            expected = str(exc)
        result = got[i]
        assert (str(result) if isinstance(result, TxlibError) else signature(result)) == expected


def test_a_search_stopped_by_its_time_limit_says_so() -> None:
    """The time limit may come in the middle of a batch of candidate runs (whatever the
    machine's speed, 0.3 s is short of this preset's 3,000 runs): the runs done count,
    and the search says it did not try everything."""
    cut = search_worse("paxos-commit-f2-three-down", max_seconds=0.3)
    assert not cut.complete and cut.runs < 3000

"""Budgets and bad input of the lab's "can it get worse?", the fault grid and the pictures.

Every budget here is a count (runs, cells, steps), never seconds, so each test asserts
where a search or a grid stops, and that is the same on any machine.
"""

from __future__ import annotations

import gc
import math
import re
from typing import Any

import pytest

import txlib
import txlib.explorer.grid as grid_module
import txlib.explorer.worse as worse_module
from txlib.errors import TxlibError
from txlib.explorer.grid import MAX_GRID_CELLS, MAX_GRID_STEPS, fault_grid
from txlib.explorer.worse import MAX_TOTAL_STEPS, search_worse
from txlib.viz.lab import FAULT_CHOICES, LabModel, make_fault
from txlib.viz.static import state_diagram
from txlib.viz.widgets import Lab, lab


def number(pattern: str, text: str) -> int:
    """The whole number that ``pattern``'s group captures in ``text``."""
    found = re.search(pattern, text)
    assert found is not None, text
    return int(found.group(1))


def long_blocked(horizon: int) -> txlib.Scenario:
    """A blocked 2PC whose participants ask for the decision until ``horizon`` ms: every
    run, with a fault or not, is long (100,000 steps, the option max_steps, at 10**6)."""
    return txlib.scenario("2pc-coordinator-crash-blocks").replace(options={"horizon": horizon})


# --- 1. "can it get worse?": a budget of steps ----------------------------------------
def test_the_search_stops_once_its_runs_add_up_to_max_total_steps() -> None:
    s = long_blocked(10**5)  # each run about 10,000 steps
    longest = s.run().steps + 1  # a fault ends a run here no later than the horizon
    cut = search_worse(s, max_seconds=math.inf, max_total_steps=30_000)
    assert not cut.complete and cut.stopped_by == "max_total_steps" and cut.found is None
    assert 30_000 <= cut.steps < 30_000 + longest, "over the budget by less than one run"
    assert 0 < cut.runs <= 20, "a few runs of up to 10,000 steps, not 3,000"
    again = search_worse(s, max_seconds=math.inf, max_total_steps=30_000)
    assert (again.runs, again.steps, again.stopped_by) == (cut.runs, cut.steps, cut.stopped_by)


def test_a_search_within_its_budgets_is_complete_and_says_what_it_used() -> None:
    done = search_worse("2pc-coordinator-crash-blocks", max_seconds=math.inf)
    assert done.complete and done.stopped_by is None and done.found is None
    assert 0 < done.steps < MAX_TOTAL_STEPS
    runs = search_worse("2pc-coordinator-crash-blocks", max_runs=5, max_seconds=math.inf)
    assert runs.stopped_by == "max_runs" and runs.runs == 5


def test_the_largest_preset_search_stops_at_its_run_limit_not_its_step_budget() -> None:
    """Every preset's answer is the one it had before the step budget: the largest
    (3,000 runs) stays under it, so its run limit still decides where it stops."""
    s = search_worse("paxos-commit-f2-three-down", max_seconds=math.inf)
    assert s.runs == 3000 and s.stopped_by == "max_runs" and s.steps < MAX_TOTAL_STEPS
    assert s.found is not None and s.found.faults[0].describe() == "crash a3 from the start"


@pytest.mark.parametrize("bad", [0, -5, "x", True, 1.5, None])
def test_max_total_steps_must_be_a_positive_whole_number(bad: Any) -> None:
    with pytest.raises(TxlibError, match="max_total_steps must be a whole number") as info:
        search_worse("2pc-happy", max_total_steps=bad)
    assert repr(bad) in str(info.value)


def test_the_lab_says_when_its_step_budget_stopped_the_search(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worse_module, "MAX_TOTAL_STEPS", 500)
    blocked = LabModel.of(txlib.scenario("2pc-coordinator-crash-blocks"))
    said = blocked.worse()
    assert said.startswith("this run already ends blocked, and none of the ")
    assert "add up to 500 steps" in said
    assert "this run alone has 103 steps" in said and "never tried" in said
    assert blocked.scenario.faults == txlib.scenario("2pc-coordinator-crash-blocks").faults
    happy = LabModel.of(txlib.scenario("2pc-happy"))
    said = happy.worse()
    assert said.startswith("worse, with ") and len(happy.scenario.faults) == 1
    assert re.search(r"\(the earliest of the \d+ runs tried; the search stops once the runs "
                     r"it tries add up to 500 steps, and some placements were never tried\)",
                     said), said


def test_the_labs_worse_button_on_a_million_ms_horizon_stops_at_its_step_budget() -> None:
    """The attacker's scenario: 3,000 runs of 100,000 steps ran for many minutes."""
    model = LabModel.of(long_blocked(10**6))
    assert model.run.steps == 100_000
    said = model.worse()
    assert f"add up to {MAX_TOTAL_STEPS:,} steps" in said and "100,000 steps" in said
    runs = number(r"none of the (\d+) runs tried", said)
    assert runs <= MAX_TOTAL_STEPS // 30_000, "a few dozen long runs at most"


def test_the_lab_widget_shows_the_step_budget_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worse_module, "MAX_TOTAL_STEPS", 500)
    L = lab("2pc-coordinator-crash-blocks")
    L.worse_button.click()
    assert "add up to 500 steps" in L.message.value and "⚠" not in L.message.value


# --- 2. the fault grid: a budget of cells and steps -----------------------------------
def test_a_grid_of_too_many_cells_is_refused_before_any_run() -> None:
    with pytest.raises(TxlibError) as info:
        fault_grid(txlib.Scenario("2pc", 64))
    text = str(info.value)
    assert "258 rows" in text and "130 columns" in text and "33,540 cells" in text
    assert f"{MAX_GRID_CELLS:,} cells" in text and "max_steps=" in text
    assert "crashes=False or drops=False" in text and "fewer nodes (this one has 65)" in text


def test_the_grid_of_a_million_ms_horizon_is_refused_and_says_to_shorten_the_run() -> None:
    with pytest.raises(TxlibError) as info:
        txlib.fault_grid(long_blocked(10**6))
    text = str(info.value)
    assert "100,001 rows" in text and "800,008 cells" in text
    assert "a shorter run" in text and "max_steps=100000" in text
    assert "max_steps=" not in text.split("Narrow it:")[1].split("a shorter run")[0], (
        "no number of rows fits: even one row is 8 runs of 100,000 steps")


def test_the_suggested_max_steps_makes_a_grid_that_fits() -> None:
    s = txlib.Scenario("2pc", 24)
    with pytest.raises(TxlibError) as info:
        txlib.fault_grid(s)
    assert "4,900 cells" in str(info.value)
    rows = number(r"max_steps=(\d+)", str(info.value))
    g = txlib.fault_grid(s, max_steps=rows)
    assert len(g.steps) == rows + 1 and len(g.steps) * len(g.columns) <= MAX_GRID_CELLS


def test_a_grid_whose_runs_would_be_too_long_is_refused_before_any_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grid_module, "MAX_GRID_STEPS", 10_000)
    ran: list[object] = []
    real = grid_module.branch_runs

    def counted(*args: Any) -> Any:
        ran.append(args)
        return real(*args)

    monkeypatch.setattr(grid_module, "branch_runs", counted)
    with pytest.raises(TxlibError) as info:
        fault_grid("2pc-coordinator-crash-blocks")
    text = str(info.value)
    assert "373 runs with a fault" in text and "103 steps" in text and "10,000" in text
    assert not ran, "refused before any fault's run"
    rows = number(r"max_steps=(\d+)", text)
    assert len(fault_grid("2pc-coordinator-crash-blocks", max_steps=rows).steps) == rows + 1


def test_a_grid_whose_faults_make_long_runs_stops_at_its_step_budget() -> None:
    """Few cells, but a crash makes the run block until the horizon: 100,000 steps."""
    s = txlib.scenario("2pc-happy").replace(options={"horizon": 10**6})
    with pytest.raises(TxlibError) as info:
        txlib.fault_grid(s)
    text = str(info.value)
    assert f"more than {MAX_GRID_STEPS:,} steps" in text and "100,000 steps, not 13" in text
    assert "a smaller option horizon" in text
    assert gc.isenabled(), "the grid's runs are ended: the cycle collector is on again"


def test_the_largest_preset_grid_fits_its_budget() -> None:
    g = txlib.fault_grid("paxos-commit-f2-three-down")
    assert (len(g.steps), len(g.columns)) == (149, 18)
    assert sum(g.counts().values()) == 1039


# --- 3. a list or dict where a name goes: a TxlibError, not a TypeError ----------------
@pytest.mark.parametrize("kind", [["crash"], {"crash": 1}, {"crash"}])
def test_injecting_an_unhashable_fault_kind_names_it_and_the_choices(kind: Any) -> None:
    model = LabModel.of(txlib.scenario("2pc-happy"))
    with pytest.raises(TxlibError) as info:
        model.inject(kind, "p1")
    assert repr(kind) in str(info.value) and "'crash'" in str(info.value)
    assert "'fail-compensation'" in str(info.value)
    assert model.scenario.faults == (), "nothing changed"
    with pytest.raises(TxlibError):
        make_fault(kind, "p1", 0)


def test_the_lab_widget_shows_an_unhashable_fault_kind_as_an_error() -> None:
    L = Lab(txlib.scenario("2pc-happy"))
    L.inject({"crash": 1}, "p1")  # type: ignore[arg-type]  # what an attacker might pass
    assert "⚠ unknown fault" in L.message.value and "crash" in L.message.value
    assert L.model.scenario.faults == ()
    L.inject("crash", "p1")
    assert len(L.model.scenario.faults) == 1 and set(FAULT_CHOICES) >= {"crash"}


@pytest.mark.parametrize("role", [["participant"], {"participant": 1}])
def test_a_state_diagram_of_an_unhashable_role_names_it_and_the_roles(role: Any) -> None:
    for target in ("2pc", txlib.scenario("2pc-happy")):
        with pytest.raises(TxlibError) as info:
            state_diagram(target, role=role)
        assert repr(role) in str(info.value)
        assert "'coordinator' or 'participant'" in str(info.value)


# --- 4. near misses get a suggestion, and the valid choices ----------------------------
def test_a_misspelt_lab_option_suggests_the_scenario_field() -> None:
    with pytest.raises(TxlibError, match=r"unknown option 'sed' \(did you mean 'seed'\?\)") as e:
        txlib.lab("2pc-happy", sed=3)
    assert "'participants', 'seed', 'faults'" in str(e.value) and "'horizon'" in str(e.value)
    with pytest.raises(TxlibError, match="did you mean 'participants'"):
        txlib.lab("2pc", participnts=2)
    with pytest.raises(TxlibError, match="did you mean 'horizon'"):
        txlib.lab("2pc", horizn=500)
    assert lab("2pc-happy", seed=3).model.scenario.seed == 3
    assert lab("2pc", participants=2, horizon=500).model.scenario.options == {"horizon": 500}


@pytest.mark.parametrize("call", [
    lambda: txlib.fault_grid("2pc-hapy"),
    lambda: search_worse("2pc-hapy"),
    lambda: txlib.lab("2pc-hapy"),
], ids=["fault_grid", "search_worse", "lab"])
def test_a_misspelt_scenario_name_suggests_it_and_lists_protocols_and_scenarios(
        call: Any) -> None:
    with pytest.raises(TxlibError, match=r"'2pc-hapy' \(did you mean '2pc-happy'\?\)") as info:
        call()
    assert "'paxos-commit'" in str(info.value) and "'tcc-hanging-barrier'" in str(info.value)


def test_a_misspelt_fault_grid_option_suggests_the_option() -> None:
    with pytest.raises(TxlibError, match=r"'max_step' \(did you mean 'max_steps'\?\)") as info:
        txlib.fault_grid("2pc-happy", max_step=3)
    assert "'crashes', 'drops' or 'max_steps'" in str(info.value)
    with pytest.raises(TxlibError, match="did you mean 'crashes'"):
        txlib.fault_grid("2pc-happy", crash=False)
    assert len(txlib.fault_grid("2pc-happy", max_steps=3).steps) == 4


def test_a_worse_runs_stuck_participants_are_named_in_one_short_line():
    """'Can it get worse?' names the participants a blocked run leaves undecided as a
    sentence does, and past four of them says how many others (64 names made a lab
    message of a dozen lines)."""
    from txlib.explorer.worse import _named

    assert _named(["p1"]) == "p1" and _named(["p1", "p2"]) == "p1 and p2"
    assert _named(["p1", "p2", "p3"]) == "p1, p2 and p3"
    assert _named([f"p{i}" for i in range(1, 65)]) == "p1, p2, p3 and 61 others"


# --- inputs that were accepted and did nothing, or drew nonsense -------------------------
@pytest.mark.parametrize(("call", "message"), [
    (lambda: search_worse("2pc", kinds=[]), "kinds names no fault kind to try"),
    (lambda: txlib.diagram(txlib.simulate("2pc"), title=123),
     "diagram option title must be a string, got 123"),
    (lambda: txlib.diagram(txlib.simulate("2pc"), nodes=["p1", "p1"]),
     "diagram option nodes names a node twice"),
    (lambda: state_diagram("2pc", "coordinator", step=5),
     "draws its bare machine, so step=5 means nothing"),
])
def test_inputs_that_did_nothing_are_refused(call: Any, message: str) -> None:
    """search_worse with no kinds said 'complete' after 0 runs; a diagram drew a lane
    twice or took any title; state_diagram of a name ignored its step."""
    with pytest.raises(TxlibError, match=re.escape(message)):
        call()


def test_can_it_get_worse_says_when_the_run_is_already_as_bad_as_it_gets() -> None:
    """It said 'no run with one added fault blocks or breaks a safety rule' of a run that
    was blocked, or broke atomicity, already (found by an attacker)."""
    broken = LabModel.of(txlib.scenario("3pc-partition-split"))
    assert re.fullmatch(r"this run already breaks atomicity at step \d+: nothing is worse",
                        broken.worse())
    blocked = LabModel.of(txlib.scenario("2pc-coordinator-crash-blocks"))
    said = blocked.worse()
    assert said.startswith("this run already ends blocked, and no run with one added fault")
    assert said.endswith("breaks a safety rule") and "blocks or" not in said

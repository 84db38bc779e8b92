"""The lab and compare widgets, driven from Python as a learner would drive them."""

from __future__ import annotations

import json

import pytest

import txlib
from txlib.viz.compare import compare
from txlib.viz.lab import FAULT_CHOICES, LabModel
from txlib.viz.widgets import Lab, lab


def test_stepping_moves_the_cursor_and_the_frame():
    L = lab("2pc")
    assert L.cursor == 0 and L.slider.max == L.model.run.steps
    before = L.diagram.value
    L.step_forward()
    L.step_forward()
    assert L.cursor == 2 and L.slider.value == 2
    assert L.diagram.value != before and "step 2" in L.diagram.value
    L.step_back()
    assert L.cursor == 1
    L.to_end()
    assert L.cursor == L.model.run.steps and "committed" in L.status.value
    L.to_start()
    assert L.cursor == 0
    L.step_back()
    assert L.cursor == 0, "the cursor never leaves the run"


def test_buttons_do_what_the_methods_do():
    L = lab("2pc")
    L.forward_button.click()
    L.forward_button.click()
    L.back_button.click()
    assert L.cursor == 1
    L.end_button.click()
    assert L.cursor == L.model.run.steps


def test_frames_show_state_machines_and_the_node_table():
    L = lab("2pc")
    L.go(2)  # the first participant has prepared
    assert 'data-state="PREPARED"' in L.machines.value
    assert "■ PREPARED" in L.table.value
    assert "in progress" in L.status.value


def test_injecting_a_crash_keeps_the_cursor_and_the_past():
    L = lab("2pc")
    L.go(6)
    past = [e for e in L.model.run.trace if e.step <= 6]
    L.inject("crash", "coordinator")
    assert L.cursor == 6
    assert L.model.scenario.faults == (txlib.crash("coordinator", at_step=6),)
    assert [e for e in L.model.run.trace if e.step <= 6] == past
    L.to_end()
    assert "blocked" in L.status.value
    assert "added: crash coordinator after step 6" in L.message.value
    assert "crash coordinator after step 6" in L.faults_list.value


def test_the_fault_panel_injects_the_chosen_fault():
    L = lab("2pc")
    L.go(1)
    L.fault_kind.value = "drop-to"
    L.fault_node.value = "p2"
    L.inject_button.click()
    (fault,) = L.model.scenario.faults
    assert (fault.kind, fault.dst, fault.at_step) == ("drop", "p2", 1)


def test_undo_and_reset():
    L = lab("2pc")
    L.go(3)
    L.inject("crash", "p1")
    L.inject("recover", "p1")
    L.undo()
    assert L.model.scenario.faults == (txlib.crash("p1", at_step=3),)
    L.reset()
    assert L.model.scenario.faults == () and L.cursor == 0
    L.undo()
    assert "no fault to undo" in L.message.value


def test_an_impossible_fault_is_reported_in_the_widget_and_changes_nothing():
    L = lab("2pc")
    L.go(2)
    scenario, run = L.model.scenario, L.model.run
    L.inject("vote-no", "coordinator")
    assert "participant" in L.message.value and "⚠" in L.message.value
    assert (L.model.scenario, L.model.run, L.cursor) == (scenario, run, 2)
    L.inject("recover", "p1")  # p1 is up: legal, but it does nothing, and we say so
    assert "no effect" in L.message.value and "p1 was not down" in L.message.value


def test_json_round_trip_and_bad_json():
    L = lab("2pc-coordinator-crash-blocks")
    text = L.json.value
    assert txlib.Scenario.from_json(text) == L.model.scenario
    other = txlib.scenario("3pc-happy").to_json()
    L.load_json(other)
    assert L.model.scenario == txlib.scenario("3pc-happy")
    assert json.loads(L.json.value) == json.loads(other)
    L.json.value = "{not json"
    L.json_button.click()
    assert "malformed scenario JSON" in L.message.value
    assert L.model.scenario == txlib.scenario("3pc-happy"), "nothing lost"
    assert L.json.value == "{not json", "the learner's text stays for them to fix"


def test_presets_load_every_named_scenario():
    L = lab("2pc")
    for name in txlib.scenarios():
        L.preset.value = name
        L.preset_button.click()
        assert L.model.scenario == txlib.scenario(name)
        assert name in L.title.value and L.cursor == 0


def test_the_presets_menu_shows_the_preset_the_lab_started_from():
    L = lab("3pc-partition-split")
    assert L.preset.value == "3pc-partition-split", "not the menu's first entry"
    L.inject("crash", "p1")
    assert L.preset.value == "3pc-partition-split", "still the preset the faults went into"
    L.preset.value = "2pc-happy"
    L.preset_button.click()
    assert L.preset.value == "2pc-happy"
    L.load_json(txlib.scenario("2pc-happy").replace(seed=99).to_json())
    assert L.preset.value is None, "a scenario of one's own is no preset"
    assert lab("2pc").preset.value is None


def test_invariants_so_far_appear_when_the_cursor_reaches_them():
    L = lab("3pc-partition-split")
    (violation,) = L.model.run.violations
    L.go(violation.step - 1)
    assert "holds so far" in L.status.value
    L.go(violation.step)
    assert "atomicity" in L.status.value and violation.reason in L.status.value


def test_lab_accepts_protocols_scenarios_runs_and_options():
    assert lab("3pc", participants=2).model.run.participants == ("p1", "p2")
    run = txlib.simulate("2pc", seed=4)
    assert lab(run).model.scenario == run.scenario
    assert lab("2pc", cooperative=True).model.scenario.options == {"cooperative": True}
    with pytest.raises(txlib.TxlibError, match=r"'nope'.*'2pc'"):
        lab("nope")


def test_every_fault_choice_can_be_injected():
    for kind in FAULT_CHOICES:
        saga = kind.startswith("fail-")
        model = LabModel.of(txlib.scenario("saga-happy" if saga else "2pc-happy"))
        model.move(3)
        node = "payment" if saga else "p1"
        if kind == "recover":
            model.inject("crash", node)
        model.inject(kind, node)
        assert model.scenario.faults[-1].at_step == 3


def test_compare_runs_the_same_faults_over_two_protocols():
    c = compare("2pc", "3pc", faults=[txlib.crash("coordinator", at_step=4)])
    assert [r.outcome for r in c.runs] == ["blocked", "aborted"]
    assert "blocked" in c.table.value and "aborted" in c.table.value
    c.go(3)
    assert all("step 3" in d.value for d in c.diagrams)


def test_lab_displays_as_a_widget():
    bundle = Lab(txlib.scenario("2pc-happy"))._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_failing_a_saga_step_from_the_panel_compensates():
    L = lab("saga-happy")
    L.go(2)
    L.inject("fail-step", "payment")
    L.to_end()
    assert "compensated" in L.status.value
    L.inject("fail-step", "orchestrator")
    assert "runs no step" in L.message.value


def test_can_it_get_worse_loads_a_run_that_blocks_or_breaks():
    L = lab("3pc-happy")
    L.worse_button.click()
    assert L.model.run.outcome in ("blocked", "inconsistent")
    assert len(L.model.scenario.faults) == 1 and "worse, with" in L.message.value
    assert 0 < L.cursor <= L.model.run.steps
    L.undo()
    assert L.model.run.outcome == "committed"


def test_can_it_get_worse_counts_its_runs_while_it_searches(monkeypatch):
    """The search takes seconds (longer in the browser): while it lasts, the button is
    off and the message counts the runs tried; before, the lab showed nothing until the
    answer came."""
    import txlib.explorer.worse as worse_module

    monkeypatch.setattr(worse_module, "PROGRESS_EVERY", 0.0)  # report after every run
    L = lab("3pc-happy")
    seen: list[tuple[str, bool]] = []
    say = L._say
    monkeypatch.setattr(L, "_say", lambda text, error=False: (
        seen.append((text, L.worse_button.disabled)), say(text, error))[1])
    L.worse_button.click()
    counted = [text for text, _ in seen if "tried so far" in text]
    assert [text.split(": ")[1] for text in counted[:3]] == [
        "1 run tried so far…", "2 runs tried so far…", "3 runs tried so far…"]
    assert all(off for text, off in seen if text != seen[-1][0]), "off while searching"
    assert "worse, with" in L.message.value and not L.worse_button.disabled


def test_can_it_get_worse_says_when_its_run_limit_stopped_it(monkeypatch):
    """"No worse run" is claimed only when every candidate was tried."""
    import txlib.explorer.worse as worse_module

    real = worse_module.search_worse
    monkeypatch.setattr(worse_module, "search_worse",
                        lambda s, budget=1, **kw: real(s, budget, max_runs=5, **kw))
    L = lab("2pc-coordinator-crash-blocks")  # blocked: no single fault breaks a rule
    L.worse_button.click()
    assert "none of the 5 runs tried" in L.message.value
    assert "never tried" in L.message.value and not L.model.scenario.faults[1:]
    found = lab("2pc-happy")
    found.worse_button.click()
    assert "worse, with" in found.message.value and len(found.model.scenario.faults) == 1
    assert "the earliest of the 5 runs tried" in found.message.value
    monkeypatch.undo()
    L.worse_button.click()
    assert ">this run already ends blocked, and no run with one added fault (a crash" in (
        L.message.value) and L.message.value.endswith("breaks a safety rule</div>")


def test_a_recorded_run_that_its_scenario_does_not_replay_is_shown_as_recorded():
    finding = txlib.explore("3pc", participants=2, max_crashes=0, timeouts="asynchronous",
                            progress=False).violations[0]
    L = lab(finding.run)
    assert L.model.recorded and L.model.run is finding.run
    L.to_end()
    assert "inconsistent" in L.status.value
    L.inject("crash", "p1")
    assert "recorded" in L.message.value and L.model.run is finding.run
    simulated = txlib.simulate("2pc")
    assert not lab(simulated).model.recorded, "a simulator run replays: the lab is live"


def test_reset_of_a_recorded_run_returns_to_the_recording():
    """A recorded run whose scenario does not replay it (here: a teaching variant's run,
    as an explorer finding or a real run would be) must survive Reset."""
    from txlib.protocols.variants import Impatient2PC

    scenario = txlib.Scenario("2pc", ("p1", "p2"), faults=(
        txlib.crash("coordinator", when="coordinator sends COMMIT to p1"),))
    recorded = scenario.run(variant=Impatient2PC())
    assert recorded.outcome != scenario.run().outcome, "the scenario alone replays differently"
    model = LabModel.of_run(recorded)
    model.move(3)
    assert "unchanged" in model.reset()
    assert model.run is recorded and model.cursor == 0
    with pytest.raises(txlib.TxlibError, match="recorded"):
        model.inject("crash", "p1")


def test_compare_takes_more_than_two_protocols_and_labels_repeats_apart():
    c = compare("2pc", "3pc", "paxos-commit", faults=[txlib.crash("coordinator", at_time=20)])
    assert [r.outcome for r in c.runs] == ["blocked", "aborted", "committed"]
    assert len(c.diagrams) == 3 and "committed" in c.table.value
    assert compare("2pc", "2pc", "2pc").labels == ["2pc (A)", "2pc (B)", "2pc (C)"]


def test_loading_a_shorter_run_starts_it_at_step_zero():
    """The slider's maximum came down before its value, which pulled the value (and the
    model) to the new run's last step: a loaded preset, a reset or loaded JSON opened on
    the outcome, not at the start (found by an attacker)."""
    lab = txlib.lab("3pc-partition-split")
    lab.to_end()
    lab.load_preset("2pc-happy")
    assert (lab.model.cursor, lab.slider.value, lab.slider.max) == (0, 0, lab.model.last_step)
    lab.go(5)
    lab.inject("crash", "coordinator")
    lab.to_end()
    lab.reset()
    assert (lab.model.cursor, lab.slider.value) == (0, 0)
    lab.go(10)
    lab.load_json('{"protocol": "2pc", "participants": ["a"]}')
    assert (lab.model.cursor, lab.slider.value) == (0, 0)
    lab.load_preset("3pc-partition-split")  # a longer run
    assert (lab.model.cursor, lab.slider.value, lab.slider.max) == (0, 0, lab.model.last_step)


def test_compare_draws_a_long_run_around_the_step():
    """compare() drew each run whole: a 30,055-event run is refused as a whole picture
    (and was megabytes of SVG at every step of the slider)."""
    from txlib.viz.compare import WHOLE_EVENTS
    long = txlib.Scenario("2pc", participants=("p1", "p2", "p3"), faults=(
        txlib.crash("coordinator", when="coordinator sends COMMIT to p1"),
        txlib.recover("coordinator", at_time=300_000)),
        options={"horizon": 301_000, "max_steps": 50_000})
    shown = txlib.compare(long, "2pc")
    assert len(shown.runs[0].trace) > WHOLE_EVENTS >= len(shown.runs[1].trace)
    shown.go(shown.runs[0].steps // 2)
    far, short = (d.value for d in shown.diagrams)
    assert far.startswith("<svg") and len(far) < 300_000 and short.startswith("<svg")


def test_compare_shows_a_recorded_run_as_it_is():
    """compare() replayed every run's scenario: an explorer finding (or a run of real
    processes), which its scenario does not replay, was silently shown as another run
    (here 10 steps recorded, 41 replayed) (found by an attacker)."""
    finding = txlib.explore("3pc", participants=2, partitions=True,
                            progress=False).violations[0]
    assert finding.run.scenario.run().steps != finding.run.steps
    shown = compare(finding.run, "3pc")
    assert shown.runs[0] is finding.run and shown.labels == ["3pc-explored", "3pc"]
    simulated = txlib.simulate("2pc")
    assert compare(simulated, "3pc").runs[0] is simulated
    unrecorded = txlib.simulate("2pc", record=False)
    assert compare(unrecorded, "3pc").runs[0].recorded, "no trace: replayed to draw it"

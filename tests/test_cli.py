"""The command line: `python -m txlib list|run` through subprocess, and its parsers in-process."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

import txlib
from txlib.cli import FAULT_HELP, FAULT_USAGE, main, parse_fault, parse_option
from txlib.engine.faults import FAULT_KINDS

ROOT = Path(__file__).resolve().parents[1]


def txlib_cli(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``python -m txlib ARGS`` in a clean, non-terminal environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FORCE_COLOR", "NO_COLOR", "COLUMNS", "TTY_COMPATIBLE")}
    env["PYTHONIOENCODING"] = "utf-8"
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "txlib", *args], capture_output=True, text=True,
        encoding="utf-8", timeout=60, cwd=ROOT, env=env, **kwargs,
    )


def trace_rows(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if re.match(r"^\s*\d+\s+\d+\s", ln)]


# --- through subprocess -------------------------------------------------------------------
def test_list_shows_every_named_scenario_with_its_protocol():
    p = txlib_cli("list")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    for name in txlib.scenarios():
        assert re.search(rf"│ {re.escape(name)}\s+│ {txlib.scenario(name).protocol}", p.stdout)
    assert "2pc = Two-phase commit" in p.stdout
    assert "\x1b[" not in p.stdout  # no colour codes when not a terminal


def test_run_a_named_scenario_shows_trace_and_outcome():
    p = txlib_cli("run", "2pc-happy")
    assert p.returncode == 0, p.stderr
    run = txlib.scenario("2pc-happy").run()
    assert "✓ COMMITTED" in p.stdout
    assert len(trace_rows(p.stdout)) == len(run.trace)
    assert "→ send      coordinator -> p1 PREPARE" in p.stdout
    assert max(len(ln) for ln in p.stdout.splitlines()) <= 120


def test_run_a_protocol_with_a_fault_is_blocked_and_still_exits_0():
    p = txlib_cli("run", "2pc", "--participants", "2", "--limit", "5",
                  "--fault", "crash:coordinator@when=coordinator logs COMMIT")
    assert p.returncode == 0, p.stderr
    assert "⊘ BLOCKED" in p.stdout
    assert "crash coordinator when coordinator logs COMMIT" in p.stdout
    assert "↯ down" in p.stdout
    assert len(trace_rows(p.stdout)) == 5
    assert "more event(s) not shown" in p.stdout


def test_json_output_parses_and_matches_the_library():
    p = txlib_cli("run", "3pc-partition-split", "--seed", "3", "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)  # stdout holds the JSON and nothing else
    run = txlib.scenario("3pc-partition-split").replace(seed=3).run()
    result = data["result"]
    assert result["outcome"] == run.outcome == "inconsistent"
    assert result["decisions"] == run.decisions
    assert result["metrics"] == json.loads(json.dumps(asdict(run.metrics)))
    assert result["violations"] == [asdict(v) for v in run.violations]
    assert result["steps"] == run.steps
    assert txlib.Scenario.from_dict(data["scenario"]) == run.scenario


def test_step_reads_enter_between_events_and_finishes_at_end_of_input():
    p = txlib_cli("run", "2pc-happy", "--step", input="\n" * 5, stdin=None)
    assert p.returncode == 0, p.stderr
    assert len(trace_rows(p.stdout)) == len(txlib.scenario("2pc-happy").run().trace)
    assert "COMMITTED" in p.stdout


def test_step_with_no_stdin_does_not_hang():
    p = txlib_cli("run", "3pc-happy", "--step")
    assert p.returncode == 0, p.stderr
    assert len(trace_rows(p.stdout)) == len(txlib.scenario("3pc-happy").run().trace)
    assert "COMMITTED" in p.stdout


def test_svg_writes_the_space_time_diagram(tmp_path):
    pytest.importorskip("txlib.viz.spacetime",
                        reason="txlib.viz.spacetime (the space-time diagram) is not written yet")
    target = tmp_path / "run.svg"
    p = txlib_cli("run", "2pc-coordinator-crash-blocks", "--limit", "1", "--svg", str(target))
    assert p.returncode == 0, p.stderr
    assert target.read_text(encoding="utf-8").startswith("<svg")
    assert f"wrote the space-time diagram to {target}" in " ".join(p.stdout.split())


@pytest.mark.parametrize(("args", "expected"), [
    (["run", "4pc"], "unknown scenario or protocol '4pc'; valid choices: '2pc', '3pc'"),
    (["run", "2pc", "--fault", "explode:p1"], "unknown fault kind 'explode'; valid kinds: "),
    (["run", "2pc", "--option", "loss"], "bad option 'loss': write KEY=VALUE"),
    (["run", "2pc", "--participants", "0"], "participants must be between 1 and 64, got 0"),
    (["run", "2pc", "--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_arguments_print_one_line_and_exit_2(args, expected):
    p = txlib_cli(*args)
    assert p.returncode == 2
    assert p.stdout == ""
    assert "Traceback" not in p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("txlib: error: ")
    assert expected in lines[0]


# --- main() in-process (fast) ------------------------------------------------------------
def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def json_result(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code, out, err = run_main(capsys, "run", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_faults_are_added_to_a_named_scenarios_plan(capsys):
    data = json_result(capsys, "2pc-coordinator-crash-blocks",
                       "--fault", "recover:coordinator@time=300")
    faults = [txlib.Fault.from_dict(f) for f in data["scenario"]["faults"]]
    assert faults == [*txlib.scenario("2pc-coordinator-crash-blocks").faults,
                      txlib.recover("coordinator", at_time=300)]
    assert data["result"]["outcome"] == "committed"
    assert data["result"] == json_result(capsys, "2pc-coordinator-recovers")["result"]


def test_seed_participants_names_and_options_override_the_scenario(capsys):
    data = json_result(capsys, "2pc-happy", "--seed", "9", "--participants", "4",
                       "--option", "cooperative=true", "--option", "tx=TX-9")
    s = data["scenario"]
    assert (s["seed"], s["participants"]) == (9, ["p1", "p2", "p3", "p4"])
    assert s["options"] == {"cooperative": True, "tx": "TX-9"}
    assert json_result(capsys, "3pc", "--names", "a,b")["scenario"]["participants"] == ["a", "b"]


def test_unfired_faults_are_reported_in_json(capsys):
    data = json_result(capsys, "2pc", "--fault", "heal@time=5000")
    (unfired,) = data["result"]["unfired_faults"]
    assert unfired["fault"] == {"kind": "heal", "at_time": 5000}
    assert unfired["description"] == "heal at time 5000"
    assert unfired["reason"].startswith("time 5000 never came")


def test_scenario_file_is_loaded(capsys, tmp_path):
    path = tmp_path / "s.json"
    scenario = txlib.scenario("2pc-lost-vote").replace(seed=5)
    path.write_text(scenario.to_json(), encoding="utf-8")
    data = json_result(capsys, "--scenario-file", str(path))
    assert data["scenario"] == scenario.to_dict()
    assert data["result"]["outcome"] == scenario.run().outcome


def test_json_is_deterministic(capsys):
    assert json_result(capsys, "3pc-coordinator-recovers") == json_result(
        capsys, "3pc-coordinator-recovers")


def test_list_can_be_filtered_by_protocol(capsys):
    code, out, _ = run_main(capsys, "list", "--protocol", "3pc")
    assert code == 0
    assert all(name in out for name in txlib.scenarios("3pc"))
    assert not any(f"│ {name} " in out for name in txlib.scenarios("2pc"))


def test_step_q_skips_to_the_summary(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n\nq\n"))
    code, out, _ = run_main(capsys, "run", "2pc-happy", "--step")
    assert code == 0
    assert len(trace_rows(out)) == 3
    total = len(txlib.scenario("2pc-happy").run().trace)
    assert f"... {total - 3} more event(s) not shown" in out
    assert "COMMITTED" in out


def test_step_respects_limit(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, _ = run_main(capsys, "run", "2pc-happy", "--step", "--limit", "4")
    assert code == 0
    assert len(trace_rows(out)) == 4


def test_help_lists_the_fault_syntax(capsys):
    code, out, _ = run_main(capsys, "run", "--help")
    assert code == 0
    for usage in FAULT_USAGE.values():
        assert usage in out


@pytest.mark.parametrize(("args", "expected"), [
    ([], "choose a command: list, run or explore"),
    (["run"], "give a TARGET"),
    (["run", "2pc", "--scenario-file", "x.json"], "either TARGET or --scenario-file"),
    (["run", "--scenario-file", "/nonexistent/s.json"], "cannot read scenario file"),
    (["run", "2pc", "--participants", "x"], "argument --participants: invalid int value"),
    (["run", "2pc", "--participants", "2", "--names", "a,b"], "not allowed with argument"),
    (["run", "2pc", "--names", "a,a"], "participant names must be unique"),
    (["run", "2pc", "--limit", "-1"], "must be 0 or more"),
    (["run", "2pc", "--option", "loss=2"], "option loss must be between 0 and 1"),
    (["run", "2pc", "--option", "nosuch=1"], "unknown option 'nosuch'"),
    (["run", "2pc", "--fault", "crash:nobody"], "names unknown node 'nobody'"),
    (["run", "2pc", "--fault", "vote_no:coordinator"], "vote_no applies to a participant"),
    (["run", "2pc-vote-no", "--participants", "1"], "unknown node 'p2'"),
    (["run", "2pc", "--json", "--step"], "--step and --json cannot be combined"),
    (["list", "--protocol", "4pc"], "unknown protocol '4pc'"),
])
def test_bad_arguments_in_process(capsys, args, expected):
    code, out, err = run_main(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("txlib: error: ")
    assert expected in err


def test_unwritable_svg_is_an_error(capsys, tmp_path):
    pytest.importorskip("txlib.viz.spacetime",
                        reason="txlib.viz.spacetime (the space-time diagram) is not written yet")
    code, _, err = run_main(capsys, "run", "2pc", "--json",
                            "--svg", str(tmp_path / "missing" / "x.svg"))
    assert code == 2
    assert err.startswith("txlib: error: cannot write")


# --- parse_fault ----------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "fault"), [
    ("crash:coordinator", txlib.crash("coordinator")),
    ("crash:coordinator@step=5", txlib.crash("coordinator", 5)),
    ("crash:p1@time=40", txlib.crash("p1", at_time=40)),
    ("crash:coordinator@when=coordinator logs COMMIT",
     txlib.crash("coordinator", when="coordinator logs COMMIT")),
    ("crash:coordinator@when=coordinator sends COMMIT to p1",
     txlib.crash("coordinator", when="coordinator sends COMMIT to p1")),
    ("  Crash : p2 @ when = p2 receives PREPARE from coordinator ",
     txlib.crash("p2", when="p2 receives PREPARE from coordinator")),
    ("recover:coordinator@time=300", txlib.recover("coordinator", at_time=300)),
    ("recover:p2@step=0", txlib.recover("p2", 0)),
    ("partition:coordinator,p1|p2,p3@when=coordinator sends PRE_COMMIT to p1",
     txlib.partition(["coordinator", "p1"], ["p2", "p3"],
                     when="coordinator sends PRE_COMMIT to p1")),
    ("partition:p3", txlib.partition(["p3"])),
    ("partition: p1 , p2 @time=10", txlib.partition(["p1", "p2"], at_time=10)),
    ("heal@time=400", txlib.heal(at_time=400)),
    ("heal@when=p1 logs PREPARED", txlib.heal(when="p1 logs PREPARED")),
    ("vote_no:p2", txlib.vote_no("p2")),
    ("vote-no:p2", txlib.vote_no("p2")),
    ("vote_no:p2@when=p1 logs PREPARED", txlib.vote_no("p2", when="p1 logs PREPARED")),
    ("slow:p1=50", txlib.slow("p1", 50)),
    ("slow:p1=50@time=20", txlib.slow("p1", 50, at_time=20)),
    ("drop", txlib.drop()),
    ("drop:*", txlib.drop()),
    ("drop:YES@src=p2", txlib.drop("YES", src="p2")),
    ("drop:YES@src=p2,dst=coordinator,count=all",
     txlib.drop("YES", src="p2", dst="coordinator", count=None)),
    ("drop:COMMIT@count=2@step=3", txlib.drop("COMMIT", count=2, at_step=3)),
    ("drop@when=coordinator logs COMMIT", txlib.drop(when="coordinator logs COMMIT")),
    ("duplicate:PREPARE", txlib.duplicate("PREPARE")),
    ("duplicate@dst=p1,count=3", txlib.duplicate(dst="p1", count=3)),
    ("delay:COMMIT=100", txlib.delay(100, "COMMIT")),
    ("delay:=25", txlib.delay(25)),
    ("delay:*=25@dst=p2", txlib.delay(25, dst="p2")),
    ("delay:COMMIT@by=100,time=50", txlib.delay(100, "COMMIT", at_time=50)),
])
def test_parse_fault(spec, fault):
    assert parse_fault(spec) == fault


@pytest.mark.parametrize(("spec", "expected"), [
    ("", "empty fault spec; valid kinds: 'crash'"),
    ("   ", "empty fault spec"),
    ("explode:p1", "unknown fault kind 'explode'; valid kinds: 'crash', 'recover'"),
    (":p1", "unknown fault kind ''"),
    ("crash", "NODE is missing; write crash:NODE[@TIMING]"),
    ("crash:p 1", "NODE must be a node name without spaces, got 'p 1'"),
    ("crash:p1@", "nothing after '@'"),
    ("crash:p1@step=x", "step must be a whole number, got 'x'"),
    ("crash:p1@step=-1", "step must be 0 or more, got -1"),
    ("crash:p1@time=", "time must be a whole number, got ''"),
    ("crash:p1@src=p2", "unknown key for crash 'src'; valid choices: 'step', 'time' or 'when'"),
    ("crash:p1@step", "'step' is not KEY=VALUE"),
    ("crash:p1@step=1,time=2", "give only one of step=, time= or when=, got step, time"),
    ("crash:p1@when=p1 explodes", "cannot read trigger"),
    ("crash:p1@when=p1 bakes BREAD", "unknown trigger action 'bakes'"),
    ("recover:p1", "recover needs a time: add @step=K, @time=T or @when=TRIGGER; write "
                   "recover:NODE@TIMING"),
    ("heal", "heal needs a time"),
    ("heal:x@time=1", "heal takes no ':' part"),
    ("vote_no:p1@src=p2", "unknown key for vote_no 'src'; valid choices: 'step', 'time'"),
    ("vote_no", "NODE is missing"),
    ("slow:p1", "slow needs how long: slow:NODE=BY"),
    ("slow:p1=fast", "BY must be a whole number, got 'fast'"),
    ("slow:=5", "NODE is missing"),
    ("delay:COMMIT", "delay needs how long"),
    ("delay:COMMIT=5@by=5", "give BY once"),
    ("drop:YES=5", "drop takes no '=BY'"),
    ("drop:YES@by=5", "unknown key for drop 'by'"),
    ("drop:YES@count=0", "count must be 1 or more"),
    ("drop:YES@count=many", "count must be a whole number, got 'many'"),
    ("drop:YES@src=p2,src=p3", "src= is given twice"),
    ("drop:TWO WORDS", "message type must be one word"),
    ("drop:YES@src=", "src is missing"),
    ("partition:", "each node of a partition group is missing"),
    ("partition:a,,b", "each node of a partition group is missing"),
    ("partition:a|a", "node 'a' is in two groups"),
])
def test_parse_fault_errors_name_the_bad_part(spec, expected):
    with pytest.raises(txlib.TxlibError) as info:
        parse_fault(spec)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    if spec.strip() and not expected.startswith("unknown fault kind"):
        assert message.startswith(f"bad fault {spec!r}: ")


def test_every_fault_kind_has_a_documented_syntax():
    assert set(FAULT_USAGE) == set(FAULT_KINDS)
    for kind, usage in FAULT_USAGE.items():
        assert re.split(r"[\[:@]", usage)[0] == kind
        assert f"  {usage}  " in FAULT_HELP


def test_every_named_scenarios_faults_can_be_written_as_specs():
    specs = {
        "2pc-coordinator-crash-blocks": ["crash:coordinator@when=coordinator logs COMMIT"],
        "2pc-lost-vote": ["drop:YES@src=p2"],
        "2pc-partition-blocks": ["partition:coordinator@when=coordinator logs COMMIT"],
        "3pc-partition-split": [
            "partition:coordinator,p1|p2,p3@when=coordinator sends PRE_COMMIT to p1"],
        "2pc-presumed-abort": ["crash:coordinator@step=1", "recover:coordinator@time=200"],
    }
    for name, spec_list in specs.items():
        assert tuple(parse_fault(s) for s in spec_list) == txlib.scenario(name).faults, name


# --- parse_option ---------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("loss=0.1", ("loss", 0.1)),
    ("cooperative=true", ("cooperative", True)),
    ("horizon=2000", ("horizon", 2000)),
    ("tx=TX-9", ("tx", "TX-9")),
    ('tx="007"', ("tx", "007")),
    ('balances={"p1": 150}', ("balances", {"p1": 150})),
    ("operations=null", ("operations", None)),
])
def test_parse_option(text, expected):
    assert parse_option(text) == expected


@pytest.mark.parametrize("text", ["loss", "=1", "2x=1", "a b=1", ""])
def test_parse_option_errors(text):
    with pytest.raises(txlib.TxlibError, match="write KEY=VALUE"):
        parse_option(text)


def _cli(*args: str, stdin=None, stdout=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "txlib", *args], stdin=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=120, check=False)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [("list",), ("run", "2pc-happy", "--json")])
def test_an_unwritable_output_is_one_error_line(args):
    with open("/dev/full", "w") as full:
        done = _cli(*args, stdout=full)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "txlib: error: cannot write the output: No space left on device"]


def test_step_with_stdin_closed_prints_the_whole_run():
    done = _cli("run", "2pc-happy", "--step", stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    closed = subprocess.run(
        [sys.executable, "-c", "import sys; sys.stdin.close(); sys.stdin = None; "
         "from txlib.cli import main; raise SystemExit(main(['run', '2pc-happy', '--step']))"],
        capture_output=True, text=True, timeout=120, check=False)
    assert closed.returncode == 0, closed.stderr
    assert "committed" in closed.stdout


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_an_endless_scenario_file_is_refused_after_a_bounded_read():
    done = _cli("run", "--scenario-file", "/dev/zero")
    assert done.returncode == 2
    assert "at most 1,000,000" in done.stderr and "Traceback" not in done.stderr


def test_a_long_run_prints_a_bounded_trace_and_draws_no_huge_svg(capsys, tmp_path):
    """'run ... --option horizon=1000000' printed all 150,000 rows (49 s, 715 MB), and
    --svg wrote an 86 MB picture (found by an attacker)."""
    from txlib.viz.console import DEFAULT_ROWS
    from txlib.viz.spacetime import MAX_DRAWN_EVENTS

    code, out, _ = run_main(capsys, "run", "2pc-coordinator-crash-blocks",
                            "--option", "horizon=1000000")
    assert code == 0
    said = re.search(r"\.\.\. (\d+) more event\(s\) not shown", out)
    assert said is not None and "(--limit N shows more rows)" in out
    assert int(said.group(1)) > 100_000 - DEFAULT_ROWS  # the run has over 100,000 events
    assert out.count(" more event(s) not shown") == 1
    target = tmp_path / "long.svg"
    code, _, err = run_main(capsys, "run", "2pc-coordinator-crash-blocks", "--option",
                            "horizon=1000000", "--svg", str(target))
    assert code == 2 and f"--svg draws at most {MAX_DRAWN_EVENTS:,}" in err
    assert not target.exists()
    code, out, _ = run_main(capsys, "run", "2pc-happy", "--limit", "1000")
    assert code == 0 and "--limit N shows more" not in out


# --- explore ----------------------------------------------------------------------------------
def test_explore_prints_the_shortest_violation_step_by_step():
    p = txlib_cli("explore", "3pc", "--partitions", "--max-crashes", "0")
    assert p.returncode == 0, p.stderr
    found = txlib.explore("3pc", partitions=True, max_crashes=0, progress=False)
    bug = found.violation("atomicity")
    assert bug is not None
    assert f"{found.states:,} distinct states" in p.stdout
    assert f"VIOLATION {bug}" in p.stdout
    for i, label in enumerate(bug.labels, 1):  # the path, one step a line
        assert f"{i:>4}. {label}" in p.stdout
    assert "\x1b[" not in p.stdout


def test_explore_json_is_what_the_search_found(capsys):
    code, out, err = run_main(capsys, "explore", "2pc", "--participants", "3", "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    found = txlib.explore("2pc", participants=3, progress=False)
    assert (data["states"], data["transitions"], data["complete"]) == (
        found.states, found.transitions, True)
    assert data["blocking"]["path"] == list(found.blocking.labels)
    assert data["blocking_states"] == found.blocking_states
    assert "seconds" not in data  # the same output on every machine


def test_explore_a_named_scenario_searches_from_its_plan_and_participants(capsys):
    code, out, _ = run_main(capsys, "explore", "2pc-coordinator-crash-blocks", "--json",
                            "--max-crashes", "0")
    assert code == 0
    scenario = txlib.scenario("2pc-coordinator-crash-blocks")
    found = txlib.explore(scenario, max_crashes=0, progress=False)
    assert json.loads(out)["states"] == found.states
    assert found.states != txlib.explore("2pc", max_crashes=0, progress=False).states


@pytest.mark.parametrize(("args", "said"), [
    (("explore", "2pc", "--option", "max_crashes=3"), "give --max-crashes instead"),
    (("explore", "2pc", "--option", "progress=true"), "the command line does not set it"),
    (("explore", "2pc", "--seed", "3"), "unrecognized arguments: --seed"),
    (("explore", "2pc", "--max-seconds", "0"), "positive, finite"),
    (("explore", "2pc", "--option", "latency_max=30"), "the explorer ignores time"),
    (("explore", "2pc", "--option", "cooperativ=true"), "did you mean 'cooperative'"),
    (("explore", "2pc", "--participants", "9"), "at most 8 participants"),
    # a named scenario, or a protocol with faults, as a protocol alone (before: "unknown
    # option 'max_states' (did you mean 'max_steps'?)")
    (("explore", "2pc-happy", "--option", "max_crashes=2"), "give --max-crashes instead"),
    (("explore", "2pc", "--fault", "crash:p1@step=3", "--option", "max_states=9"),
     "give --max-states instead"),
])
def test_explore_refuses_bad_arguments_in_one_line(capsys, args, said):
    code, out, err = run_main(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("txlib: error:") and said in err and err.count("\n") == 1


def test_explore_a_protocol_with_a_fault_takes_the_searchs_default_participants(capsys):
    """A protocol with a fault is searched with the participants a protocol alone gets
    (two for a commit protocol), not the three of a timed run."""
    code, out, _ = run_main(capsys, "explore", "2pc", "--fault", "crash:p1@step=3", "--json")
    assert code == 0
    plan = txlib.Scenario("2pc", ("p1", "p2"), faults=(txlib.crash("p1", at_step=3),))
    assert json.loads(out)["model"] == "2pc with 2 participants"
    assert json.loads(out)["states"] == txlib.explore(plan, progress=False).states

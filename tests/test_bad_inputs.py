"""Hundreds of bad inputs, each refused the same way: a ``txlib.TxlibError`` (a
ValueError) whose message names the bad value. Never a deep traceback, a hang, or a
silent wrong answer.

The cases are tables, grouped by where the input enters: the Python API (simulate,
faults, scenarios), scenario JSON, saga definitions, the lab model and the command
line; explorer arguments are in ``tests/test_explore.py``. Each case is
``(label, call, fragment)``: ``call()`` must raise TxlibError and the message must
contain ``fragment`` (usually the bad value as the message shows it).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from typing import Any

import pytest

import txlib
from txlib import TxlibError
from txlib.cli import main
from txlib.protocols import PROTOCOLS
from txlib.viz.lab import LabModel

Case = tuple[str, Callable[[], Any], str]


def noop(store: dict[str, Any], ctx: Any) -> None:
    return None


# --- simulate: options --------------------------------------------------------------------
def _option_cases() -> list[Case]:
    cases: list[Case] = []
    for protocol in PROTOCOLS:
        config = txlib.protocols.get_protocol(protocol).config_class
        for name in config.option_names():
            default = config.__dataclass_fields__[name].default
            kind = config.__dataclass_fields__[name].type
            bad_values: list[Any] = []
            if kind == "int":
                bad_values = ["7", 2.5, True, -1, 10**12, 10**5000]
            elif kind == "float":
                bad_values = ["0.1", -0.5, 1.5, math.nan, True]
            elif kind == "bool":
                bad_values = ["yes", 1, None]
            elif kind == "str" and name == "tx":
                bad_values = [5, ""]
            elif kind == "str" and isinstance(default, str):
                bad_values = [5, "no such value at all"]
            for value in bad_values:
                label = txlib.errors.shown(value)[:24]
                huge = isinstance(value, int) and not isinstance(value, bool) and (
                    abs(value) > 2**63)
                cases.append((f"{protocol}:{name}={label}",
                              lambda p=protocol, n=name, v=value: txlib.simulate(p, **{n: v}),
                              txlib.errors.shown(value) if huge else name))
        cases.append((f"{protocol}:unknown option", lambda p=protocol: txlib.simulate(
            p, no_such_option=1), "'no_such_option'"))
        cases.append((f"{protocol}:typo of participants", lambda p=protocol: txlib.simulate(
            p, partcipants=2), "did you mean 'participants'"))
        cases.append((f"{protocol}:typo of faults", lambda p=protocol: txlib.simulate(
            p, fault=[]), "did you mean 'faults'"))
        cases.append((f"{protocol}:seed text", lambda p=protocol: txlib.simulate(
            p, seed="1"), "'1'"))
        cases.append((f"{protocol}:seed negative", lambda p=protocol: txlib.simulate(
            p, seed=-3), "-3"))
        cases.append((f"{protocol}:seed huge", lambda p=protocol: txlib.simulate(
            p, seed=10**5000), "about 5,001 digits"))
        cases.append((f"{protocol}:record text", lambda p=protocol: txlib.simulate(
            p, record="no"), "'no'"))
        cases.append((f"{protocol}:volatile text", lambda p=protocol: txlib.Scenario(
            p).run(volatile="no"), "'no'"))
        cases.append((f"{protocol}:faults not a list", lambda p=protocol: txlib.simulate(
            p, faults="crash p1"), "'crash p1'"))
        cases.append((f"{protocol}:fault not a fault", lambda p=protocol: txlib.simulate(
            p, faults=[5]), "5"))
    return cases


COMMIT = ("2pc", "3pc", "naive", "paxos-commit")


def _commit_cases() -> list[Case]:
    cases: list[Case] = []
    for p in COMMIT:
        cases += [
            (f"{p}:participants 0", lambda p=p: txlib.simulate(p, participants=0), "0"),
            (f"{p}:participants 65", lambda p=p: txlib.simulate(p, participants=65), "65"),
            (f"{p}:participants text", lambda p=p: txlib.simulate(p, participants="p1"),
             "'p1'"),
            (f"{p}:participants bool", lambda p=p: txlib.simulate(p, participants=True),
             "True"),
            (f"{p}:participant with space", lambda p=p: txlib.simulate(
                p, participants=["a b"]), "'a b'"),
            (f"{p}:participant reserved", lambda p=p: txlib.simulate(
                p, participants=["coordinator"]), "'coordinator'"),
            (f"{p}:participants twice", lambda p=p: txlib.simulate(
                p, participants=["a", "a"]), "'a'"),
            (f"{p}:crash unknown node", lambda p=p: txlib.simulate(
                p, faults=[txlib.crash("p9")]), "'p9'"),
            (f"{p}:crash typo node", lambda p=p: txlib.simulate(
                p, faults=[txlib.crash("p11")]), "did you mean 'p1'"),
            (f"{p}:vote_no coordinator", lambda p=p: txlib.simulate(
                p, faults=[txlib.vote_no("coordinator")]), "'coordinator'"),
            (f"{p}:fail_step", lambda p=p: txlib.simulate(
                p, faults=[txlib.fail_step("nope")]), "fail_step"),
            (f"{p}:drop unknown type", lambda p=p: txlib.simulate(
                p, faults=[txlib.drop("NOPE")]), "'NOPE'"),
            (f"{p}:trigger unknown type", lambda p=p: txlib.simulate(
                p, faults=[txlib.crash("p1", when="coordinator sends NOPE")]), "'NOPE'"),
            (f"{p}:operations bad", lambda p=p: txlib.simulate(
                p, operations={"p9": ["debit", 1]}), "p9"),
            (f"{p}:balances bad", lambda p=p: txlib.simulate(p, balances={"p1": "x"}), "x"),
        ]
    cases.append(("3pc:drop PREPARE", lambda: txlib.simulate(
        "3pc", faults=[txlib.drop("PREPARE")]), "'PREPARE'"))
    cases.append(("2pc:drop PRE_COMMIT", lambda: txlib.simulate(
        "2pc", faults=[txlib.drop("PRE_COMMIT")]), "'PRE_COMMIT'"))
    paxos = "paxos-commit"
    for value, fragment in ((0, "got 0"), (2, "got 2"), ("3", "got '3'"),
                            (10**12, "got 1000000000000"), (17, "got 17"), (None, "None")):
        cases.append((f"{paxos}:acceptors={txlib.errors.shown(value)[:24]}",
                      lambda v=value: txlib.simulate(paxos, acceptors=v), fragment))
    for value, fragment in ((-1, "at least 0"), (1.5, "whole number"), (True, "whole number"),
                            (10**9 + 1, "at most"), ("1", "whole number")):
        cases.append((f"{paxos}:max_ballots={txlib.errors.shown(value)[:24]}",
                      lambda v=value: txlib.simulate(paxos, max_ballots=v), fragment))
    cases += [
        (f"{paxos}:participant named like an acceptor", lambda: txlib.simulate(
            paxos, participants=["p1", "a1"]), "'a1'"),
        (f"{paxos}:crash an acceptor it does not have", lambda: txlib.simulate(
            paxos, faults=[txlib.crash("a4")]), "'a4'"),
        (f"{paxos}:vote_no an acceptor", lambda: txlib.simulate(
            paxos, faults=[txlib.vote_no("a1")]), "'a1'"),
        (f"{paxos}:drop YES", lambda: txlib.simulate(
            paxos, faults=[txlib.drop("YES")]), "'YES'"),
        (f"{paxos}:acceptors in JSON", lambda: txlib.Scenario.from_json(
            '{"protocol": "paxos-commit", "options": {"acceptors": 4}}'), "got 4"),
    ]
    return cases


# --- faults -------------------------------------------------------------------------------
def _fault_cases() -> list[Case]:
    f = txlib.Fault
    cases: list[Case] = [
        ("kind unknown", lambda: f("explode"), "'explode'"),
        ("kind typo", lambda: f("crsh", node="p1"), "did you mean 'crash'"),
        ("crash no node", lambda: f("crash"), "crash needs a node"),
        ("crash node with space", lambda: txlib.crash("p 1"), "'p 1'"),
        ("crash node number", lambda: txlib.crash(5), "5"),
        ("crash by", lambda: f("crash", node="p1", by=5), "by=5"),
        ("crash count", lambda: f("crash", node="p1", count=3), "count=3"),
        ("crash groups", lambda: f("crash", node="p1", groups=[["p1"]]), "groups"),
        ("crash step", lambda: f("crash", node="p1", step="x"), "step='x'"),
        ("crash compensation", lambda: f("crash", node="p1", compensation=True),
         "compensation=True"),
        ("drop groups", lambda: f("drop", groups=[["p1"]]), "groups"),
        ("drop node", lambda: f("drop", node="p1"), "node='p1'"),
        ("heal node", lambda: f("heal", node="p1", at_step=1), "node='p1'"),
        ("partition node", lambda: f("partition", node="p1", groups=[["p1"]]), "node='p1'"),
        ("partition no groups", lambda: txlib.partition(), "partition needs"),
        ("partition empty group", lambda: txlib.partition([]), "partition needs"),
        ("partition twice", lambda: txlib.partition(["p1"], ["p1"]), "'p1'"),
        ("partition groups text", lambda: f("partition", groups="p1"), "'p1'"),
        ("partition group text", lambda: f("partition", groups=["p1"]), "'p1'"),
        ("recover no time", lambda: f("recover", node="p1"), "recover needs a time"),
        ("heal no time", lambda: f("heal"), "heal needs a time"),
        ("two timings", lambda: txlib.crash("p1", at_step=1, at_time=3), "at most one"),
        ("at_step negative", lambda: txlib.crash("p1", at_step=-1), "-1"),
        ("at_step text", lambda: txlib.crash("p1", at_step="1"), "'1'"),
        ("at_step float", lambda: txlib.crash("p1", at_step=1.5), "1.5"),
        ("at_time negative", lambda: txlib.crash("p1", at_time=-5), "-5"),
        ("at_time bool", lambda: txlib.crash("p1", at_time=True), "True"),
        ("when garbage", lambda: txlib.crash("p1", when="whenever"), "'whenever'"),
        ("when bad action", lambda: txlib.crash("p1", when="p1 eats PREPARED"), "eats"),
        ("when number", lambda: txlib.crash("p1", when=5), "5"),
        ("when logs to", lambda: txlib.crash("p1", when="p1 logs X to p2"), "X to p2"),
        ("when sends from", lambda: txlib.crash("p1", when="p1 sends X from p2"),
         "sends X from p2"),
        ("drop count 0", lambda: txlib.drop("YES", count=0), "0"),
        ("drop count text", lambda: txlib.drop("YES", count="all"), "'all'"),
        ("drop type with space", lambda: txlib.drop("Y ES"), "'Y ES'"),
        ("drop src number", lambda: txlib.drop(src=3), "3"),
        ("delay by 0", lambda: txlib.delay(0, "YES"), "0"),
        ("delay by text", lambda: txlib.delay("x", "YES"), "'x'"),
        ("slow by negative", lambda: txlib.slow("p1", -4), "-4"),
        ("fail_step no step", lambda: txlib.fail_step(""), "''"),
        ("fail_step times 0", lambda: txlib.fail_step("x", times=0), "0"),
        ("fail_step compensation text", lambda: txlib.fail_step("x", compensation="yes"),
         "'yes'"),
        ("vote_no no node", lambda: f("vote_no"), "vote_no needs a node"),
        ("from_dict not dict", lambda: f.from_dict(5), "5"),
        ("from_dict unknown field", lambda: f.from_dict({"kind": "crash", "node": "p1",
                                                         "colour": "red"}), "'colour'"),
        ("from_dict no kind", lambda: f.from_dict({"node": "p1"}), "kind"),
        ("from_dict bad groups", lambda: f.from_dict({"kind": "partition", "groups": 5}),
         "5"),
    ]
    return cases


# --- scenarios and JSON -------------------------------------------------------------------
def _scenario_cases() -> list[Case]:
    s = txlib.Scenario
    happy = txlib.scenario("2pc-happy")
    good = json.loads(happy.to_json())

    def with_(**changes: Any) -> str:
        return json.dumps({**good, **changes})

    cases: list[Case] = [
        ("protocol unknown", lambda: s("4pc"), "'4pc'"),
        ("protocol typo", lambda: s("2pcc"), "did you mean '2pc'"),
        ("protocol number", lambda: s(2), "2"),
        ("options not dict", lambda: s("2pc", options=[1]), "[1]"),
        ("options set value", lambda: s("2pc", options={"tx": {1}}), "{1}"),
        ("options nan", lambda: s("2pc", options={"loss": math.nan}), "nan"),
        ("options deep", lambda: s("saga", options={"context": {"x": _deep(40)}}),
         "nested more than"),
        ("name not text", lambda: s("2pc", name=5), "5"),
        ("description not text", lambda: s("2pc", description=[]), "[]"),
        ("replace bogus field", lambda: happy.replace(bogus=1), "'bogus'"),
        ("replace options None", lambda: happy.replace(options=None), "None"),
        ("replace seed text", lambda: happy.replace(seed="x"), "'x'"),
        ("with_faults not fault", lambda: happy.with_faults("crash"), "'crash'"),
        ("scenario unknown", lambda: txlib.scenario("nope"), "'nope'"),
        ("scenario typo", lambda: txlib.scenario("2pc-hapy"), "did you mean '2pc-happy'"),
        ("scenario number", lambda: txlib.scenario(3), "3"),
        ("scenarios unknown protocol", lambda: txlib.scenarios("nope"), "'nope'"),
        ("json not text", lambda: s.from_json(5), "int"),
        ("json malformed", lambda: s.from_json("{"), "line 1"),
        ("json not object", lambda: s.from_json("[1]"), "list"),
        ("json deep", lambda: s.from_json("[" * 100000 + "]" * 100000), "nested too deeply"),
        ("json huge", lambda: s.from_json(" " * 1_000_001), "1,000,001"),
        ("json huge int", lambda: s.from_json('{"protocol": "2pc", "seed": ' + "9" * 5000
                                              + "}"), "scenario JSON"),
        ("json unknown field", lambda: s.from_json(with_(colour="red")), "'colour'"),
        ("json no protocol", lambda: s.from_json('{"seed": 1}'), "protocol"),
        ("json faults not list", lambda: s.from_json(with_(faults={})), "{}"),
        ("json bad fault", lambda: s.from_json(with_(faults=[{"kind": "zap"}])), "'zap'"),
        ("json bad option", lambda: s.from_json(with_(options={"loss": 3})), "loss"),
        ("json unknown option", lambda: s.from_json(with_(options={"los": 0.1})), "'los'"),
        ("json seed float", lambda: s.from_json(with_(seed=1.5)), "1.5"),
        ("json participants bad", lambda: s.from_json(with_(participants=[1])), "1"),
        ("json saga participants", lambda: s.from_json(
            '{"protocol": "saga", "participants": ["a"]}'), "['a']"),
        ("json unknown saga", lambda: s.from_json(
            '{"protocol": "saga", "options": {"saga": "nope"}}'), "'nope'"),
    ]
    return cases


def _deep(n: int) -> Any:
    value: Any = 0
    for _ in range(n):
        value = [value]
    return value


# --- sagas --------------------------------------------------------------------------------
def _saga_cases() -> list[Case]:
    S = txlib.Saga

    def saga(name: str = "bad-input") -> txlib.Saga:
        return S(name, services={"a": {"x": 0}, "b": {}})

    def step(**kw: Any) -> Any:
        args: dict[str, Any] = {"service": "a", "action": noop, "compensation": noop}
        args.update(kw)
        return saga().step("s1", **args)

    def raising(store: dict[str, Any], ctx: Any) -> None:
        raise ZeroDivisionError("boom")

    def returns_set(store: dict[str, Any], ctx: Any) -> Any:
        return {"v": {1, 2}}

    def stores_object(store: dict[str, Any], ctx: Any) -> None:
        store["v"] = object()

    def returns_list(store: dict[str, Any], ctx: Any) -> Any:
        return [1]

    def run_with(action: Any, protocol: str) -> Any:
        s = S(f"bad-{action.__name__}", services={"a": {}})
        s.step("s1", service="a", action=action, compensation=noop)
        return s.simulate(protocol=protocol)

    cases: list[Case] = [
        ("name with space", lambda: S("a b", services={"a": {}}), "'a b'"),
        ("name control char", lambda: S("s\x00x", services={"a": {}}), "'s\\x00x'"),
        ("name number", lambda: S(5, services={"a": {}}), "5"),
        ("no services", lambda: S("s", services={}), "{}"),
        ("services list", lambda: S("s", services=["a"]), "['a']"),
        ("service reserved", lambda: S("s", services={"broker": {}}), "'broker'"),
        ("service newline", lambda: S("s", services={"a\n": {}}), "'a\\n'"),
        ("store not dict", lambda: S("s", services={"a": 5}), "5"),
        ("store set", lambda: S("s", services={"a": {"x": {1}}}), "{1}"),
        ("store object key", lambda: S("s", services={"a": {1: 2}}), "1"),
        ("context list", lambda: S("s", services={"a": {}}, context=[1]), "[1]"),
        ("context set value", lambda: S("s", services={"a": {}}, context={"x": {2}}), "{2}"),
        ("context deep", lambda: S("s", services={"a": {}}, context={"x": _deep(40)}),
         "nested"),
        ("invariant not pair", lambda: S("s", services={"a": {}}, invariants=[("x", 5)]),
         "('x', 5)"),
        ("invariants text", lambda: S("s", services={"a": {}}, invariants="rule"), "'rule'"),
        ("description number", lambda: S("s", services={"a": {}}, description=3), "3"),
        ("step name space", lambda: saga().step("a b", service="a", action=noop,
                                                compensation=noop), "'a b'"),
        ("step unknown service", lambda: step(service="c"), "'c'"),
        ("step service typo", lambda: saga().step("s1", service="aa", action=noop,
                                                  compensation=noop), "'aa'"),
        ("step action not callable", lambda: step(action=5), "5"),
        ("step compensation not callable", lambda: step(compensation="undo"), "'undo'"),
        ("step retry int", lambda: step(retry=5), "5"),
        ("step compensation_retry text", lambda: step(compensation_retry="x"), "'x'"),
        ("step pivot text", lambda: step(pivot="yes"), "'yes'"),
        ("step no compensation", lambda: saga().step("s1", service="a", action=noop),
         "needs a compensation"),
        ("retry attempts 0", lambda: txlib.Retry(attempts=0), "0"),
        ("retry backoff text", lambda: txlib.Retry(backoff="x"), "'x'"),
        ("simulate saga context list", lambda: txlib.simulate("saga", context=[1]), "[1]"),
        ("simulate saga context set", lambda: txlib.simulate("saga", context={"x": {1}}),
         "{1}"),
        ("simulate saga instances ctx", lambda: txlib.simulate(
            "saga", instances=[{"context": 5}]), "5"),
        ("simulate saga instances text", lambda: txlib.simulate("saga", instances="S1"),
         "'S1'"),
        ("simulate saga instance field", lambda: txlib.simulate(
            "saga", instances=[{"id": "x"}]), "'id'"),
        ("simulate saga ids twice", lambda: txlib.simulate(
            "saga", instances=[{"saga_id": "A"}, {"saga_id": "A"}]), "'A'"),
        ("simulate saga unknown", lambda: txlib.simulate("saga", saga="nope"), "'nope'"),
        ("simulate saga register", lambda: txlib.simulate(
            "saga", register_compensation="never"), "'never'"),
        ("simulate saga order", lambda: txlib.simulate(
            "saga", compensation_order="random"), "'random'"),
        ("simulate saga vote_no", lambda: txlib.simulate(
            "saga", faults=[txlib.vote_no("payment")]), "vote_no"),
        ("simulate saga fail unknown step", lambda: txlib.simulate(
            "saga", faults=[txlib.fail_step("nope")]), "'nope'"),
        ("tcc fail_step", lambda: txlib.simulate("tcc", faults=[txlib.fail_step("x")]),
         "fail_step"),
        # a saga's own simulate ran the saga named by option saga instead, silently
        ("saga simulate names another saga", lambda: step().simulate(saga="ecommerce"),
         "'ecommerce'"),
        ("saga scenario names another saga", lambda: step().scenario(saga="stock"),
         "'stock'"),
        # a control character in a saga id made the diagram of several instances invalid
        ("simulate saga id control char", lambda: txlib.simulate("saga", saga_id="a\x00b"),
         "'a\\x00b'"),
        ("simulate saga instance id control char", lambda: txlib.simulate(
            "saga", instances=[{"saga_id": "a\x1bb"}, {}]), "'a\\x1bb'"),
        ("choreography saga id control char", lambda: txlib.simulate(
            "saga-choreography", saga_id="a\x00b"), "'a\\x00b'"),
        # an event's id is "<saga_id>:<event>": a ':' in the id makes it ambiguous
        ("choreography saga id with a colon", lambda: txlib.simulate(
            "saga-choreography", saga_id="S1:order_created"), "without '|', ':'"),
        ("retry attempts huge", lambda: txlib.Retry(attempts=10**12), "1000000000000"),
        ("retry backoff huge", lambda: txlib.Retry(backoff=10**15), "1000000000000000"),
    ]
    for protocol in ("saga", "saga-choreography"):
        cases += [
            (f"{protocol}: action raises", lambda p=protocol: run_with(raising, p),
             "ZeroDivisionError"),
            (f"{protocol}: action returns a set", lambda p=protocol: run_with(returns_set, p),
             "{1, 2}"),
            (f"{protocol}: action stores an object",
             lambda p=protocol: run_with(stores_object, p), "object"),
            (f"{protocol}: action returns a list",
             lambda p=protocol: run_with(returns_list, p), "[1]"),
        ]
    return cases


# --- pictures, console, trace -------------------------------------------------------------
def _picture_cases() -> list[Case]:
    run = txlib.simulate("2pc", participants=2)
    return [
        ("diagram of a number", lambda: txlib.diagram(5), "5"),
        ("diagram of text", lambda: txlib.diagram("2pc"), "'2pc'"),
        ("diagram step text", lambda: txlib.diagram(run, step="x"), "'x'"),
        ("diagram step negative", lambda: txlib.diagram(run, step=-2), "-2"),
        ("diagram unknown option", lambda: txlib.diagram(run, bogus=1), "'bogus'"),
        ("diagram option typo", lambda: txlib.diagram(run, scal=2), "did you mean 'scale'"),
        ("diagram scale text", lambda: txlib.diagram(run, scale="big"), "'big'"),
        ("diagram width negative", lambda: txlib.diagram(run, width=-5), "-5"),
        ("diagram future", lambda: txlib.diagram(run, future="maybe"), "'maybe'"),
        ("diagram nodes unknown", lambda: txlib.diagram(run, nodes=["p9"]), "'p9'"),
        ("diagram nodes text", lambda: txlib.diagram(run, nodes="p1"), "'p1'"),
        ("state diagram role", lambda: txlib.state_diagram(run, role="acceptor"),
         "'acceptor'"),
        ("state diagram protocol", lambda: txlib.state_diagram("4pc"), "'4pc'"),
        ("state diagram of number", lambda: txlib.state_diagram(5), "5"),
        ("state diagram step", lambda: txlib.state_diagram(run, step="x"), "'x'"),
        ("console of number", lambda: txlib.console.show(5), "5"),
        ("console limit text", lambda: txlib.console.show(run, limit="x"), "'x'"),
        ("trace text limit", lambda: run.trace.text(limit="x"), "'x'"),
        ("trace text limit negative", lambda: run.trace.text(limit=-1), "-1"),
        ("lab of number", lambda: txlib.lab(5), "5"),
        ("lab unknown target", lambda: txlib.lab("4pc"), "'4pc'"),
        ("compare one run", lambda: txlib.compare("2pc"), "at least two"),
        ("compare no run", lambda: txlib.compare(), "got 0"),
        ("compare unknown", lambda: txlib.compare("2pc", "4pc"), "'4pc'"),
        ("compare third unknown", lambda: txlib.compare("2pc", "3pc", "4pc"), "'4pc'"),
        ("compare says which run", lambda: txlib.compare("2pc", "paxos-commit", faults=[
            txlib.crash("a1")]), "compare's run 1 ('2pc')"),
        ("compare faults not a list", lambda: txlib.compare("2pc", "3pc", faults=5), "got 5"),
        ("compare paxos option on 2pc", lambda: txlib.compare("paxos-commit", "2pc",
                                                                 acceptors=5), "run 2"),
        ("compare too many", lambda: txlib.compare(*["2pc"] * 27), "at most 26"),
        ("no trace", lambda: txlib.simulate("2pc", record=False).trace, "record=False"),
        # an SVG cannot hold a control character: the picture did not show
        ("diagram title control char", lambda: txlib.diagram(run, title="a\x00b"),
         "'a\\x00b'"),
        ("console not a rich Console", lambda: txlib.console.show(run, console=io.StringIO()),
         "StringIO"),
        ("with_faults given a list", lambda: txlib.Scenario("2pc").with_faults(
            [txlib.crash("p1")]), "with_faults(*faults)"),
    ]


# --- the lab model ------------------------------------------------------------------------
def _lab_cases() -> list[Case]:
    def model() -> LabModel:
        return LabModel.of(txlib.scenario("2pc-happy"))

    def saga_model() -> LabModel:
        return LabModel.of(txlib.scenario("saga-happy"))

    cases: list[Case] = [
        ("move text", lambda: model().move("3"), "'3'"),
        ("move bool", lambda: model().move(True), "True"),
        ("inject unknown kind", lambda: model().inject("explode", "p1"), "'explode'"),
        ("inject no node", lambda: model().inject("crash", None), "choose a node"),
        ("inject unknown node", lambda: model().inject("crash", "p9"), "'p9'"),
        ("inject vote-no coordinator", lambda: model().inject("vote-no", "coordinator"),
         "'p1'"),
        ("inject fail-step on 2pc", lambda: model().inject("fail-step", "p1"), "sagas"),
        ("inject fail-step wrong node", lambda: saga_model().inject("fail-step",
                                                                    "orchestrator"),
         "'orchestrator'"),
        ("inject vote-no on a saga", lambda: saga_model().inject("vote-no", "payment"),
         "'fail-step'"),
        ("preset unknown", lambda: model().preset("nope"), "'nope'"),
        ("json malformed", lambda: model().load_json("{"), "line 1"),
        ("json deep", lambda: model().load_json("[" * 50000 + "]" * 50000), "nested"),
        ("json not scenario", lambda: model().load_json("[]"), "list"),
    ]
    for kind in ("crash", "recover", "drop-to", "drop-from", "duplicate-to", "delay-to",
                 "partition", "vote-no", "slow"):
        cases.append((f"inject {kind} unknown node",
                      lambda k=kind: model().inject(k, "nobody"), "'nobody'"))

    # What the lab's clickable diagram sends (see tests/test_clicks.py for the good ones).
    def at(step: int) -> LabModel:
        m = model()
        m.move(step)
        return m

    clicks: list[tuple[str, Any, str]] = [
        ("not an object", "drop", "'drop'"),
        ("a list", ["drop", 1], "['drop', 1]"),
        ("no action", {"step": 1, "message": 1}, "None"),
        ("unknown action", {"action": "explode", "step": 1, "message": 1}, "'explode'"),
        ("action not text", {"action": 3, "step": 1, "message": 1}, "3"),
        ("unknown field", {"action": "drop", "step": 1, "message": 1, "colour": "red"},
         "'colour'"),
        ("no step", {"action": "drop", "message": 1}, "None"),
        ("step text", {"action": "drop", "step": "1", "message": 1}, "'1'"),
        ("step bool", {"action": "drop", "step": True, "message": 1}, "True"),
        ("step negative", {"action": "drop", "step": -1, "message": 1}, "-1"),
        ("step huge", {"action": "drop", "step": 10**40, "message": 1}, "41 digits"),
        ("stale step", {"action": "drop", "step": 2, "message": 1}, "step 2"),
        ("no message", {"action": "drop", "step": 1}, "None"),
        ("message text", {"action": "delay", "step": 1, "message": "1"}, "'1'"),
        ("message zero", {"action": "duplicate", "step": 1, "message": 0}, "0"),
        ("message float", {"action": "drop", "step": 1, "message": 1.5}, "1.5"),
        ("message not in flight", {"action": "drop", "step": 1, "message": 99}, "99"),
        ("message and node", {"action": "drop", "step": 1, "message": 1, "node": "p1"},
         "'p1'"),
        ("node missing", {"action": "crash", "step": 1}, "None"),
        ("node empty", {"action": "crash", "step": 1, "node": ""}, "''"),
        ("node number", {"action": "recover", "step": 1, "node": 7}, "7"),
        ("node unknown", {"action": "crash", "step": 1, "node": "p9"}, "'p9'"),
        ("node and message", {"action": "crash", "step": 1, "node": "p1", "message": 1},
         "message 1"),
        ("recover an up node", {"action": "recover", "step": 1, "node": "p1"}, "p1 is up"),
    ]
    cases += [(f"click {label}", lambda c=content: at(1).click(c), fragment)
              for label, content, fragment in clicks]
    cases.append(("click a recorded run", lambda: LabModel.of_run(model().run).click(
        {"action": "crash", "step": 0, "node": "p1"}), "recorded"))
    return cases


# --- the command line ---------------------------------------------------------------------
CLI: list[tuple[list[str], str]] = [
    (["run", "4pc"], "'4pc'"),
    (["run", "2pcc"], "did you mean '2pc'"),
    (["run"], "give a TARGET"),
    (["run", "2pc", "--fault", "crash"], "'crash'"),
    (["run", "2pc", "--fault", "crash:p9"], "'p9'"),
    (["run", "2pc", "--fault", "crash:p1@step=-1"], "-1"),
    (["run", "2pc", "--fault", "crash:p1@step=x"], "'x'"),
    (["run", "2pc", "--fault", "crash:p1@step=" + "9" * 40], "40 digits"),
    (["run", "2pc", "--fault", "crash:p1@colour=red"], "colour"),
    (["run", "2pc", "--fault", "explode:p1"], "'explode'"),
    (["run", "2pc", "--fault", "fail_step:nope"], "fail_step"),
    (["run", "2pc", "--fault", "drop:NOPE"], "'NOPE'"),
    (["run", "3pc", "--fault", "drop:PREPARE"], "'PREPARE'"),
    (["run", "2pc", "--fault", "partition:p1|p1"], "'p1'"),
    (["run", "2pc", "--option", "loss=3"], "loss"),
    (["run", "2pc", "--option", "los=0.1"], "'los'"),
    (["run", "2pc", "--option", "noequals"], "noequals"),
    (["run", "2pc", "--participants", "0"], "0"),
    (["run", "2pc", "--names", "a,a"], "'a'"),
    (["run", "2pc", "--seed", "-4"], "-4"),
    (["run", "2pc-happy", "--json", "--step"], "cannot be combined"),
    (["run", "2pc-happy", "--scenario-file", "x.json"], "not both"),
    (["run", "--scenario-file", "/no/such/file.json"], "/no/such/file.json"),
    (["run", "2pc-happy", "--limit", "x"], "x"),
    (["list", "--protocol", "4pc"], "'4pc'"),
    (["run", "2pc", "--svg", "/no/such/dir/x.svg"], "/no/such/dir/x.svg"),
]


# --- real runs: refused before any process starts --------------------------------------------
def _real(**kwargs: Any) -> Any:
    from txlib.real import RealSystem

    return RealSystem(**kwargs)


def _transfer(**kwargs: Any) -> Any:
    from txlib.real import run_transfer

    return run_transfer(**kwargs)


def _real_cases() -> list[Case]:
    paxos = "paxos-commit"
    cases: list[Case] = [
        (f"real:protocol {name}", lambda n=name: _real(protocol=n), f"'{name}'")
        for name, protocol in PROTOCOLS.items()
        if not isinstance(protocol, txlib.protocols.CommitProtocol)
        or protocol.participant_class.prepared_record is None]
    cases += [
        ("real:unknown protocol", lambda: _real(protocol="4pc"), "'4pc'"),
        ("real:protocol typo", lambda: _real(protocol="3PC"), "did you mean '3pc'"),
        ("real:protocol not a name", lambda: _real(protocol=3), "3"),
        ("real:protocol None", lambda: _real(protocol=None), "None"),
        ("real:valid protocols named", lambda: _real(protocol="tcc"), "'paxos-commit'"),
        ("real:acceptors even", lambda: _real(protocol=paxos, options={"acceptors": 2}),
         "got 2"),
        ("real:acceptors huge", lambda: _real(protocol=paxos, options={"acceptors": 10**12}),
         "got 1000000000000"),
        ("real:participant named like an acceptor", lambda: _real(
            protocol=paxos, participants=["p1", "a1"]), "'a1'"),
        ("real:acceptors option in 2pc", lambda: _real(options={"acceptors": 3}),
         "'acceptors'"),
        ("real:3pc timeout 0", lambda: _real(protocol="3pc", options={"election_timeout": 0}),
         "election_timeout"),
        ("real:3pc no_fsync 2pc's record", lambda: _real(protocol="3pc",
                                                          no_fsync=["PREPARED"]), "'READY'"),
        ("real:options not a mapping", lambda: _real(options="x"), "'x'"),
        ("real:simulated network option", lambda: _real(options={"loss": 0.5}), "'loss'"),
        ("real:simulated horizon", lambda: _real(protocol=paxos, options={"horizon": 5}),
         "'horizon'"),
        ("real:amount as an option", lambda: _real(options={"amount": 5}), "amount=..."),
        ("real:amount huge", lambda: _real(amount=10**30), "about 31 digits"),
        ("real:operation huge", lambda: _real(operations={
            "p1": ("debit", 10**10), "p2": ("credit", 1), "p3": ("credit", 1)}),
         "10000000000"),
        ("real:balance huge", lambda: _real(balances={"p1": 10**12}), "1000000000000"),
        ("real:restart_delay text", lambda: _real(restart_delay="x"), "'x'"),
        ("real:start_timeout negative", lambda: _real(start_timeout=-1), "-1"),
        ("real:paxos coordinator forces no COMMIT", lambda: _real(
            protocol=paxos, no_fsync=["COMMIT"]), "does not force COMMIT"),
        ("real:acceptor has no crash points", lambda: _transfer(
            protocol=paxos, crash=("a1", "between_prepares")), "kill it at a moment"),
        ("real:run_transfer protocol option", lambda: _transfer(
            protocol=paxos, acceptors=3), "options={'acceptors': ...}"),
        ("real:run_transfer timeout text", lambda: _transfer(timeout="x"),
         "'x'"),
        ("real:run_transfer timeout huge", lambda: _transfer(timeout=10**9),
         "1000000000"),
        ("real:run_transfer saga", lambda: _transfer(protocol="saga"),
         "'saga'"),
    ]
    return cases


# --- lesson helpers and Gray & Lamport's cost counting --------------------------------------
def _lesson_cases() -> list[Case]:
    from txlib.course.l01_why_distributed_transactions import audit, half_transfers
    from txlib.course.l12_real_databases import coordinator_dies_after_the_votes
    from txlib.properties.costs import paper_costs

    run = txlib.simulate("2pc")
    cases: list[Case] = [
        (f"audit of a {p} run", lambda p=p: audit(txlib.simulate(p)), f"'{p}'")
        for p in ("saga", "saga-choreography", "tcc")]
    cases += [
        ("half_transfers of a tcc run", lambda: half_transfers(txlib.simulate("tcc")),
         "'tcc'"),
        ("audit of a scenario", lambda: audit(txlib.scenario("2pc-happy")), "Scenario"),
        ("audit of a name", lambda: audit("2pc"), "'2pc'"),
        ("audit unrecorded", lambda: audit(txlib.simulate("2pc", record=False)),
         "record=False"),
        ("dies after the votes: saga", lambda: coordinator_dies_after_the_votes("saga"),
         "'saga'"),
        ("costs: participants as text", lambda: paper_costs(run.trace, "p1"), "'p1'"),
        ("costs: unknown participant", lambda: paper_costs(run.trace, ["zz"]), "'zz'"),
        ("costs: trace a number", lambda: paper_costs(5, run.participants), "5"),
        ("costs: trace of numbers", lambda: paper_costs([1], ["p1"]), "1"),
        ("costs: machine a number", lambda: paper_costs(run.trace, run.participants, 5),
         "got 5"),
    ]
    return cases


# --- can it get worse? and the fault grid -------------------------------------------------------
def _worse_cases() -> list[Case]:
    from txlib.explorer.worse import search_worse

    def search(**kw: Any) -> Any:
        return search_worse("2pc-happy", **kw)

    return [
        ("worse: max_runs text", lambda: search(max_runs="x"), "'x'"),
        ("worse: max_runs 0", lambda: search(max_runs=0), "got 0"),
        ("worse: max_runs True", lambda: search(max_runs=True), "True"),
        ("worse: max_seconds text", lambda: search(max_seconds="a"), "'a'"),
        ("worse: max_seconds negative", lambda: search(max_seconds=-1), "-1"),
        ("worse: max_seconds nan", lambda: search(max_seconds=math.nan), "nan"),
        ("worse: kinds a string", lambda: search(kinds="crash"), "'crash'"),
        ("worse: kinds misspelt", lambda: search(kinds=["crsh"]), "did you mean 'crash'"),
        ("worse: budget 0", lambda: search(budget=0), "got 0"),
        ("grid: max_steps text", lambda: txlib.fault_grid("2pc-happy", max_steps="x"), "'x'"),
        ("grid: max_steps negative", lambda: txlib.fault_grid("2pc-happy", max_steps=-1),
         "-1"),
        ("grid: crashes text", lambda: txlib.fault_grid("2pc-happy", crashes="no"), "'no'"),
        ("grid: nothing to try", lambda: txlib.fault_grid("2pc-happy", crashes=False,
                                                          drops=False), "crashes=True"),
        # it gridded the replay, another run, as if it were this one
        ("grid: a recorded run its scenario does not replay", lambda: txlib.fault_grid(
            txlib.explore("3pc", participants=2, partitions=True,
                          progress=False).violations[0].run), "fault_grid(run.scenario)"),
        ("grid: on_select not a function", lambda: txlib.fault_grid("2pc-happy").widget(
            on_select="open"), "'open'"),
    ]


CASES: list[Case] = [*_option_cases(), *_commit_cases(), *_fault_cases(), *_scenario_cases(),
                     *_saga_cases(), *_picture_cases(), *_lab_cases(), *_real_cases(),
                     *_lesson_cases(), *_worse_cases()]


def test_there_are_at_least_300_cases() -> None:
    assert len(CASES) + len(CLI) >= 300, len(CASES) + len(CLI)


@pytest.mark.parametrize(("label", "call", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_txlib_error_naming_the_value(label: str, call: Callable[[], Any],
                                                      fragment: str) -> None:
    with pytest.raises(TxlibError) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value), f"{label}: {info.value}"


@pytest.mark.parametrize(("argv", "fragment"), CLI, ids=[" ".join(a)[:60] for a, _ in CLI])
def test_bad_command_lines_are_one_error_line(argv: list[str], fragment: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("txlib: error:") and len(err.splitlines()) == 1, err
    assert fragment in err, err


def test_a_recorded_run_has_a_step_budget_and_an_unrecorded_one_does_not():
    with pytest.raises(TxlibError, match="at most 200,000 steps"):
        txlib.simulate("2pc", max_steps=300_000)
    with pytest.raises(TxlibError, match="at most 200,000 steps"):
        LabModel.of(txlib.scenario("2pc-happy")).load_json(
            txlib.scenario("2pc-happy").replace(options={"max_steps": 10**6}).to_json())
    assert txlib.simulate("2pc", max_steps=300_000, record=False).outcome == "committed"


def test_a_recorded_run_stops_before_the_machine_runs_out_of_memory(monkeypatch):
    """A recorded run keeps every event and the acting node's volatile state after each
    handler; it may grow by three quarters of the memory that was free when it started,
    read once in 4,096 steps, and past that it stops and says so (here the machine is
    made to look small). Shorter runs never read it, and a run without a trace never
    stops for it."""
    from txlib.engine import memory
    from txlib.engine.world import MEMORY_EVERY

    readings = iter(range(10**9, 10**13, 3 * 10**8))
    monkeypatch.setattr(memory, "memory_budget", lambda: 2 * 10**9)
    monkeypatch.setattr(memory, "resident_bytes", lambda: next(readings))
    long = {"faults": [txlib.crash("coordinator", when="coordinator logs COMMIT")],
            "horizon": 10**7, "max_steps": 20 * MEMORY_EVERY}
    cut = txlib.simulate("2pc", **long)
    assert cut.stopped_by.startswith("memory=") and "3/4 of what was free at step" in cut.stopped_by
    assert 2 * MEMORY_EVERY <= cut.steps < 20 * MEMORY_EVERY
    unrecorded = txlib.simulate("2pc", record=False, **long)
    assert unrecorded.stopped_by == f"max_steps={20 * MEMORY_EVERY}"
    short = txlib.simulate("2pc", **{**long, "max_steps": MEMORY_EVERY})
    assert short.stopped_by == f"max_steps={MEMORY_EVERY}"
    monkeypatch.undo()
    assert txlib.simulate("2pc", **long).stopped_by == f"max_steps={20 * MEMORY_EVERY}"

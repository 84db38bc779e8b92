"""Every error path of txlib's public surface.

Bad input must raise :class:`txlib.TxlibError` (a ValueError) whose message names the bad
value and, where there is a set of valid choices, lists them. Each test therefore checks
the exception type *and* the words of the message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

import txlib
from txlib import TxlibError
from txlib.protocols import get_protocol

PROTOCOLS = ("2pc", "3pc")
NODES = ("coordinator", "p1", "p2", "p3")  # the nodes of a default three-participant run
PARTICIPANTS = NODES[1:]


def expect_error(call: Callable[[], Any], *fragments: str) -> str:
    """Run ``call``; it must raise TxlibError whose message holds every fragment."""
    with pytest.raises(TxlibError) as info:
        call()
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"message {message!r} lacks {missing}"
    return message


def quoted(values: Any) -> list[str]:
    """The repr of each value, as a valid-choices list shows it."""
    return [repr(v) for v in values]


def test_txlib_error_is_a_value_error() -> None:
    """Callers can catch bad input as a plain ValueError."""
    assert issubclass(txlib.TxlibError, ValueError)
    assert not issubclass(txlib.ProtocolError, ValueError)


# --- simulate: protocol and participants --------------------------------------------------


@pytest.mark.parametrize(
    "protocol", ["paxos", "2PC", "", None, ["2pc"]],
    ids=["paxos", "upper-case", "empty", "None", "list"],
)
def test_unknown_protocol_lists_protocols(protocol: Any) -> None:
    """An unknown protocol is named, and the registered ones are listed."""
    expect_error(lambda: txlib.simulate(protocol), repr(protocol), *quoted(PROTOCOLS))


@pytest.mark.parametrize("count", [0, -1, 65])
def test_participant_count_out_of_range(count: int) -> None:
    """A participant count must be 1..64; the message gives the bound and the count."""
    expect_error(lambda: txlib.simulate("2pc", participants=count), "1 and 64", str(count))


@pytest.mark.parametrize("participants", [True, False, "abc", 3.0])
def test_participants_of_the_wrong_type(participants: Any) -> None:
    """A bool, a string or a float is neither a count nor a list of names."""
    expect_error(lambda: txlib.simulate("2pc", participants=participants), repr(participants))


@pytest.mark.parametrize(
    ("names", "fragments"),
    [
        (["p1", "p2", "p1"], ["unique", "'p1'"]),
        (["coordinator", "p2"], ["reserved", "'coordinator'"]),
        (["any"], ["reserved", "'any'"]),
        (["alice smith", "bob"], ["'alice smith'"]),
        (["alice", ""], ["''"]),
        (["alice", 7], ["7"]),
    ],
    ids=["duplicate", "coordinator", "any", "space", "empty-name", "not-a-string"],
)
def test_bad_participant_names(names: list[Any], fragments: list[str]) -> None:
    """Duplicate, reserved, spaced, empty or non-string names are named in the error."""
    expect_error(lambda: txlib.simulate("2pc", participants=names), *fragments)


@pytest.mark.parametrize("names", [[], (), [f"n{i}" for i in range(65)]], ids=["[]", "()", "65"])
def test_participant_list_of_the_wrong_length(names: Any) -> None:
    """A list of names must hold 1..64 names; the message gives the length it got."""
    expect_error(lambda: txlib.simulate("2pc", participants=names), "1 and 64", str(len(names)))


# --- simulate: options --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "option"),
    [("2pc", "colour"), ("2pc", "election_timeout"), ("3pc", "latncy_min"), ("3pc", "Tx")],
)
def test_unknown_option_lists_the_valid_options(protocol: str, option: str) -> None:
    """An unknown option is named and every option of that protocol is listed."""
    valid = get_protocol(protocol).config_class.option_names()
    assert option not in valid
    expect_error(lambda: txlib.simulate(protocol, **{option: 1}), repr(option), *quoted(valid))


@pytest.mark.parametrize(
    ("protocol", "options", "fragments"),
    [
        ("2pc", {"latency_min": -5}, ["latency_min", "-5"]),
        ("2pc", {"latency_max": -1}, ["latency_max", "-1"]),
        ("2pc", {"latency_min": 0}, ["latency_min", "0"]),
        ("2pc", {"latency_min": 20, "latency_max": 10}, ["latency_max", "10", "20"]),
        ("2pc", {"loss": 1.5}, ["loss", "1.5"]),
        ("2pc", {"duplicate": -0.25}, ["duplicate", "-0.25"]),
        ("2pc", {"delay": "often"}, ["delay", "'often'"]),
        ("2pc", {"reorder": "yes"}, ["reorder", "'yes'"]),
        ("2pc", {"cooperative": 1}, ["cooperative", "1"]),
        ("2pc", {"horizon": True}, ["horizon", "True"]),
        ("2pc", {"vote_timeout": 1.5}, ["vote_timeout", "1.5"]),
        ("2pc", {"vote_timeout": "60"}, ["vote_timeout", "'60'"]),
        ("2pc", {"decision_timeout": None}, ["decision_timeout", "None"]),
        ("2pc", {"prepare_timeout": 0}, ["prepare_timeout", "0"]),
        ("3pc", {"election_timeout": "x"}, ["election_timeout", "'x'"]),
        ("3pc", {"uncertain_timeout": 0}, ["uncertain_timeout", "0"]),
        ("2pc", {"tx": ""}, ["tx", "''"]),
        ("2pc", {"tx": 5}, ["tx", "5"]),
        ("2pc", {"amount": -100}, ["amount", "-100"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_option_values(protocol: str, options: dict[str, Any], fragments: list[str]) -> None:
    """A bad option value is rejected, naming the option and the value."""
    expect_error(lambda: txlib.simulate(protocol, **options), *fragments)


# --- simulate: the bank operations and balances ------------------------------------------

TRANSFER = {"p1": ("debit", 200), "p2": ("credit", 100), "p3": ("credit", 100)}


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        ({"operations": {**TRANSFER, "p9": ("credit", 0)}}, ["'p9'", *quoted(PARTICIPANTS)]),
        ({"operations": {"p1": ("debit", 100)}}, ["'p2'", "'p3'"]),
        ({"operations": {**TRANSFER, "p2": ("steal", 100)}}, ["'steal'", "'debit'", "'credit'"]),
        ({"operations": {**TRANSFER, "p2": ("credit", -100)}}, ["p2", "-100"]),
        ({"operations": {**TRANSFER, "p2": ("credit", 1.5)}}, ["p2", "1.5"]),
        # Options are held as JSON values, so tuples are reported as lists.
        ({"operations": {**TRANSFER, "p2": ("credit",)}}, ["p2", "['credit']"]),
        ({"operations": [("debit", 100)]}, ["[['debit', 100]]"]),
        ({"balances": {"p9": 10}}, ["'p9'", *quoted(PARTICIPANTS)]),
        ({"balances": {"p1": "lots"}}, ["p1", "'lots'"]),
        ({"balances": [500, 500, 500]}, ["[500, 500, 500]"]),
        ({"balances": {"p1": -5}}, ["p1", "-5"]),
    ],
    ids=[
        "op-unknown-participant", "op-missing-participants", "op-bad-kind", "op-negative",
        "op-float-amount", "op-not-a-pair", "ops-not-a-mapping", "balance-unknown-participant",
        "balance-not-int", "balances-not-a-mapping", "balance-negative",
    ],
)
def test_bad_operations_and_balances(options: dict[str, Any], fragments: list[str]) -> None:
    """Operations and balances are checked against the participants before the run."""
    expect_error(lambda: txlib.simulate("2pc", **options), *fragments)


# --- simulate: seed and faults ------------------------------------------------------------


@pytest.mark.parametrize("seed", ["1", 1.5, True, None])
def test_seed_must_be_a_whole_number(seed: Any) -> None:
    """The seed is an int (not a bool, a float or a string)."""
    expect_error(lambda: txlib.simulate("2pc", seed=seed), "seed", repr(seed))


@pytest.mark.parametrize(
    ("faults", "bad"),
    [
        (["crash p1"], "crash p1"),
        ([txlib.crash("p1"), None], None),
        ([{"kind": "crash", "node": "p1"}], {"kind": "crash", "node": "p1"}),
        ("crash p1", "crash p1"),
        (None, None),
        (5, 5),
    ],
    ids=["str-in-list", "None-in-list", "dict-in-list", "bare-str", "None", "int"],
)
def test_faults_must_be_fault_objects(faults: Any, bad: Any) -> None:
    """Anything that is not a Fault (or a list of them) is named in the error."""
    expect_error(lambda: txlib.simulate("2pc", faults=faults), repr(bad))


# --- fault constructors -------------------------------------------------------------------

WHEN = "p1 logs PREPARED"


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda: txlib.crash(None), ["crash needs a node"]),
        (lambda: txlib.crash(""), ["crash needs a node"]),
        (lambda: txlib.recover(None, at_step=3), ["recover needs a node"]),
        (lambda: txlib.vote_no(""), ["vote_no needs a node"]),
        (lambda: txlib.slow(None, 5), ["slow needs a node"]),
        (lambda: txlib.crash("p1", -1), ["at_step", "-1"]),
        (lambda: txlib.crash("p1", at_time=-3), ["at_time", "-3"]),
        (lambda: txlib.crash("p1", 1.5), ["at_step", "1.5"]),
        (lambda: txlib.crash("p1", True), ["at_step", "True"]),
        (lambda: txlib.drop(at_time="10"), ["at_time", "'10'"]),
        (lambda: txlib.crash("p1", 2, when=WHEN), ["at_step=2", "when=", "PREPARED"]),
        (lambda: txlib.crash("p1", at_time=5, when=WHEN), ["at_time=5", "when=", "PREPARED"]),
        (lambda: txlib.drop(at_step=1, at_time=2), ["at_step=1", "at_time=2"]),
        (lambda: txlib.recover("p1"), ["recover needs a time", "at_step", "at_time", "when"]),
        (lambda: txlib.heal(), ["heal needs a time", "at_step", "at_time", "when"]),
        (lambda: txlib.drop(count=0), ["count", "0"]),
        (lambda: txlib.duplicate(count=-2), ["count", "-2"]),
        (lambda: txlib.delay(10, count=1.5), ["count", "1.5"]),
        (lambda: txlib.delay(-1), ["by", "-1"]),
        (lambda: txlib.delay("COMMIT"), ["by", "'COMMIT'"]),
        (lambda: txlib.slow("p1", -5), ["by", "-5"]),
        (lambda: txlib.partition("p1"), ["'p1'"]),
        (lambda: txlib.partition(["p1"], "p2"), ["'p2'"]),
        (lambda: txlib.partition(), ["partition needs", "()"]),
        (lambda: txlib.partition(["p1"], []), ["partition needs", "(('p1',), ())"]),
        (lambda: txlib.partition(["p1", "p2"], ["p2", "p3"]), ["'p2'", "two groups"]),
        (lambda: txlib.crash("p1", when=5), ["5"]),
        (lambda: txlib.crash("p1", when="p1 explodes now"), ["'explodes'", "'logs'", "'sends'"]),
    ],
    ids=[
        "crash-None", "crash-empty", "recover-None", "vote_no-empty", "slow-None",
        "negative-at_step", "negative-at_time", "float-at_step", "bool-at_step", "str-at_time",
        "at_step-and-when", "at_time-and-when", "at_step-and-at_time", "recover-no-time",
        "heal-no-time", "drop-count-0", "duplicate-count-negative", "delay-count-float",
        "delay-negative-by", "delay-str-by", "slow-negative-by", "partition-str",
        "partition-second-str", "partition-no-groups", "partition-empty-group",
        "partition-node-twice", "when-int", "when-unknown-action",
    ],
)
def test_fault_constructor_rejects_bad_arguments(
    make: Callable[[], txlib.Fault], fragments: list[str]
) -> None:
    """Each constructor checks its arguments at once, naming what is wrong."""
    expect_error(make, *fragments)


@pytest.mark.parametrize(
    ("participants", "make", "bad"),
    [
        (3, lambda: txlib.crash("p9"), "p9"),
        (3, lambda: txlib.recover("p4", at_time=100), "p4"),
        (3, lambda: txlib.drop("YES", src="p0"), "p0"),
        (3, lambda: txlib.duplicate(dst="P1"), "P1"),
        (3, lambda: txlib.partition(["coordinator"], ["p5"]), "p5"),
        (3, lambda: txlib.slow("coord", 10), "coord"),
        (3, lambda: txlib.crash("p1", when="p9 logs PREPARED"), "p9"),
        (3, lambda: txlib.crash("p1", when="coordinator sends COMMIT to p7"), "p7"),
        (["alice", "bob"], lambda: txlib.crash("p1"), "p1"),
    ],
    ids=["crash", "recover", "drop-src", "duplicate-dst", "partition", "slow",
         "trigger-node", "trigger-peer", "named-participants"],
)
def test_fault_naming_an_unknown_node_lists_the_nodes(
    participants: Any, make: Callable[[], txlib.Fault], bad: str
) -> None:
    """At simulate time a fault's unknown node is named and every node is listed."""
    names = ["p1", "p2", "p3"] if participants == 3 else participants
    expect_error(
        lambda: txlib.simulate("2pc", participants=participants, faults=[make()]),
        repr(bad), *quoted(["coordinator", *names]),
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: txlib.crash("any"),
        lambda: txlib.recover("any", at_step=3),
        lambda: txlib.slow("any", 50),
        lambda: txlib.partition(["any"]),
        lambda: txlib.drop("YES", src="any"),
    ],
    ids=["crash", "recover", "slow", "partition", "drop-src"],
)
def test_any_is_a_node_only_as_a_trigger_subject(make: Callable[[], txlib.Fault]) -> None:
    """'any' is a wildcard only in a trigger; as a fault's node it names no node."""
    expect_error(lambda: txlib.simulate("2pc", faults=[make()]), "'any'", *quoted(NODES))


def test_any_as_a_trigger_peer_matches_every_peer() -> None:
    """'p1 receives PREPARE from any' fires on the first PREPARE p1 receives."""
    run = txlib.simulate("2pc", faults=[txlib.crash("p1", when="p1 receives PREPARE from any")])
    assert run.unfired_faults == ()
    assert run.trace.of_kind("crash")[0].node == "p1"


@pytest.mark.parametrize(
    ("make", "bad"),
    [
        (lambda: txlib.crash(["p1"]), "['p1']"),
        (lambda: txlib.partition(["p1", 5]), "5"),
        (lambda: txlib.drop(5), "5"),
        (lambda: txlib.delay(10, ("COMMIT",)), "('COMMIT',)"),
    ],
    ids=["crash-list-node", "partition-int-node", "drop-int-type", "delay-tuple-type"],
)
def test_fault_names_must_be_strings(make: Callable[[], txlib.Fault], bad: str) -> None:
    """A node or message type that is not a string is rejected (now or at simulate time)."""
    expect_error(lambda: txlib.simulate("2pc", faults=[make()]), bad)


@pytest.mark.parametrize("node", ["coordinator", "p9"])
def test_vote_no_applies_to_a_participant(node: str) -> None:
    """Only a participant votes; the message lists the participants."""
    expect_error(
        lambda: txlib.simulate("2pc", faults=[txlib.vote_no(node)]),
        repr(node), *quoted(PARTICIPANTS),
    )


# --- triggers -----------------------------------------------------------------------------

FORMS = "'NODE logs RECORD'"


@pytest.mark.parametrize(
    "text",
    ["", "   ", "p1", "p1 logs", "p1 sends COMMIT to", "sends X from Y", "p1 logs A B C D"],
)
def test_trigger_parse_malformed(text: str) -> None:
    """A string that is not 'NODE ACTION WHAT [to/from PEER]' is quoted, with the forms."""
    expect_error(lambda: txlib.Trigger.parse(text), repr(text), FORMS)


@pytest.mark.parametrize("value", [None, 5, ["p1", "logs", "PREPARED"]])
def test_trigger_parse_needs_a_string(value: Any) -> None:
    """A trigger is read from a string; anything else is named."""
    expect_error(lambda: txlib.Trigger.parse(value), repr(value))


@pytest.mark.parametrize("text", ["p1 writes PREPARED", "coordinator Sends COMMIT to p1"])
def test_trigger_parse_unknown_action(text: str) -> None:
    """An unknown action is named and the three actions are listed."""
    action = text.split()[1]
    expect_error(lambda: txlib.Trigger.parse(text), repr(action), "'logs'", "'sends'", "'receives'")


@pytest.mark.parametrize(
    "text",
    ["coordinator sends COMMIT from p1", "p1 receives PREPARE to coordinator", "p1 logs A to p2"],
)
def test_trigger_parse_wrong_preposition(text: str) -> None:
    """'sends' takes 'to' and 'receives' takes 'from'; 'logs' takes neither."""
    expect_error(lambda: txlib.Trigger.parse(text), repr(text), "'sends ... to'",
                 "'receives ... from'")


@pytest.mark.parametrize(
    ("args", "bad"),
    [
        (("p1", "writes", "PREPARED"), "'writes'"),
        (("p1", "logs", "PREPARED", "p2"), "'p2'"),
        (("", "logs", "PREPARED"), "''"),
        (("p1", "logs", "TWO WORDS"), "'TWO WORDS'"),
        (("p1 p2", "sends", "COMMIT"), "'p1 p2'"),
        (("p1", "sends", "COMMIT", ""), "''"),
        ((5, "logs", "PREPARED"), "5"),
    ],
    ids=["action", "logs-with-peer", "empty-node", "spaced-what", "spaced-node", "empty-peer",
         "int-node"],
)
def test_trigger_constructor_rejects_what_it_cannot_write(args: tuple[Any, ...], bad: str) -> None:
    """A Trigger must be one that str() writes and parse() reads back, so each part is a word."""
    expect_error(lambda: txlib.Trigger(*args), bad)


# --- named scenarios ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["nope", "", "2PC-HAPPY", None, ["2pc-happy"]],
    ids=["nope", "empty", "upper-case", "None", "list"],
)
def test_unknown_scenario_lists_the_names(name: Any) -> None:
    """An unknown scenario name is quoted and every named scenario is listed."""
    names = txlib.scenarios()
    assert names, "there should be named scenarios to list"
    expect_error(lambda: txlib.scenario(name), repr(name), *quoted(names))


# --- Scenario.from_json -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("", 1, 1),
        ('{"protocol": "2pc"', 1, 19),
        ('{"protocol": "2pc",\n "seed": }', 2, 10),
        ('{\n  "protocol": "2pc",\n}', 3, 1),
    ],
    ids=["empty", "unterminated", "missing-value", "trailing-comma"],
)
def test_from_json_malformed_says_where(text: str, line: int, column: int) -> None:
    """Malformed JSON is reported with the line and column of the problem."""
    expect_error(lambda: txlib.Scenario.from_json(text), f"line {line}", f"column {column}")


@pytest.mark.parametrize(
    ("text", "type_name"),
    [("[1, 2]", "list"), ("42", "int"), ('"2pc"', "str"), ("null", "NoneType")],
)
def test_from_json_needs_an_object(text: str, type_name: str) -> None:
    """Valid JSON that is not an object is rejected, saying what it was."""
    expect_error(lambda: txlib.Scenario.from_json(text), "JSON object", type_name)


@pytest.mark.parametrize(
    ("value", "type_name"), [(None, "NoneType"), (b"{}", "bytes"), ({"protocol": "2pc"}, "dict")]
)
def test_from_json_needs_a_string(value: Any, type_name: str) -> None:
    """from_json reads text; a dict or bytes is named by its type."""
    expect_error(lambda: txlib.Scenario.from_json(value), "JSON string", type_name)


def test_from_json_unknown_field_lists_the_fields() -> None:
    """A misspelt top-level field is named and the valid fields are listed."""
    fields = ["name", "description", "protocol", "participants", "seed", "faults", "options"]
    expect_error(
        lambda: txlib.Scenario.from_json('{"protocol": "2pc", "seeds": 3}'),
        "'seeds'", *quoted(fields),
    )


def test_from_json_missing_protocol_lists_the_protocols() -> None:
    """A scenario without a protocol says so and lists the protocols to choose from."""
    expect_error(lambda: txlib.Scenario.from_json('{"seed": 1}'), "protocol", *quoted(PROTOCOLS))


def test_from_json_unknown_protocol_lists_the_protocols() -> None:
    """An unknown protocol in JSON is handled like one given to simulate."""
    expect_error(
        lambda: txlib.Scenario.from_json('{"protocol": "4pc"}'), "'4pc'", *quoted(PROTOCOLS)
    )


FAULT_KINDS = ["crash", "recover", "drop", "duplicate", "delay", "partition", "heal", "vote_no",
               "slow"]


@pytest.mark.parametrize(
    ("fault", "fragments"),
    [
        ('{"kind": "explode", "node": "p1"}', ["'explode'", *quoted(FAULT_KINDS)]),
        ('{"node": "p1", "at_step": 0}', ["kind", *quoted(FAULT_KINDS)]),
        (
            '{"kind": "crash", "node": "p1", "at": 3}',
            ["'at'", *quoted(f.name for f in dataclasses.fields(txlib.Fault))],
        ),
        ('"crash p1"', ["'crash p1'"]),
        ('{"kind": "crash", "node": "p1", "when": "p1 explodes"}', ["'p1 explodes'"]),
        ('{"kind": "partition", "groups": "p1"}', ["'p1'"]),
        ('{"kind": "partition", "groups": [["p1"], "p2"]}', ["'p2'"]),
        ('{"kind": "drop", "count": 0}', ["count", "0"]),
        ('{"kind": "crash", "node": ["p1"], "at_step": 0}', ["['p1']"]),
        ('{"kind": ["crash"], "node": "p1"}', ["['crash']", *quoted(FAULT_KINDS)]),
    ],
    ids=["unknown-kind", "missing-kind", "unknown-field", "not-an-object", "bad-trigger",
         "groups-str", "group-str", "count-0", "node-list", "kind-list"],
)
def test_from_json_bad_fault(fault: str, fragments: list[str]) -> None:
    """Each fault in JSON is checked like one built in Python, naming the bad part."""
    text = f'{{"protocol": "2pc", "faults": [{fault}]}}'
    expect_error(lambda: txlib.Scenario.from_json(text).run(), *fragments)


def test_from_json_faults_must_be_a_list() -> None:
    """'faults' holds a list of fault objects, not one object."""
    expect_error(
        lambda: txlib.Scenario.from_json(
            '{"protocol": "2pc", "faults": {"kind": "crash", "node": "p1"}}'
        ),
        "'faults' must be a list", "'kind': 'crash'",
    )


# --- runs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("attribute", ["trace", "metrics", "violations"])
def test_unrecorded_run_has_no_trace(attribute: str) -> None:
    """A run made with record=False has an outcome but no trace (nor what is read from it)."""
    run = txlib.simulate("2pc", record=False)
    assert run.outcome == "committed"
    assert not run.recorded
    expect_error(lambda: getattr(run, attribute), "record=False", "record=True")


def test_participants_none_means_the_protocol_default() -> None:
    """``participants=None`` (the default) gives a commit protocol three participants."""
    assert txlib.simulate("2pc", participants=None).participants == ("p1", "p2", "p3")

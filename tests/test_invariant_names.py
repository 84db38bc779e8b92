"""Every protocol and every TLA+ model lists the invariants it checks, so asking a search
for a misspelt one is an error naming the valid choices, never a silent None (which
would read as "never broken")."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import txlib
from txlib.errors import TxlibError
from txlib.explorer.tla import TCommit, TwoPhase, check
from txlib.explorer.tla_paxos import PaxosCommitSpec
from txlib.explorer.worlds import explore
from txlib.presets import scenario, scenarios
from txlib.properties import Violation, events, saga, tcc
from txlib.properties.commit import INVARIANTS
from txlib.protocols import PROTOCOLS, Protocol, get_protocol, register, unregister
from txlib.protocols.saga import SagaOrchestration

PROPERTIES = Path(txlib.__file__).parent / "properties"


def violation_names_written(module: str) -> set[str]:
    """The invariant names a properties module writes out as ``Violation("name", ...)``."""
    tree = ast.parse((PROPERTIES / f"{module}.py").read_text())
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Violation"
            and node.args and isinstance(node.args[0], ast.Constant)}


@pytest.mark.parametrize(("module", "declared"), [
    ("commit", INVARIANTS), ("saga", saga.SAGA_INVARIANTS),
    ("events", events.EVENT_INVARIANTS), ("tcc", tcc.INVARIANTS)])
def test_each_properties_module_declares_every_name_it_reports(module, declared):
    written = violation_names_written(module)
    assert written, f"no Violation(...) found in {module}.py: the scan is broken"
    assert written == set(declared)


def preset_violations() -> Iterator[tuple[str, Any, Violation]]:
    for name in scenarios():
        sc = scenario(name)
        run = sc.run()
        for v in run.violations:
            yield name, sc, v


def test_every_preset_violation_is_one_its_protocol_lists():
    seen: dict[str, set[str]] = {}
    for name, sc, v in preset_violations():
        protocol = get_protocol(sc.protocol)
        config = protocol.make_config(sc.participants, sc.options)
        assert v.invariant in protocol.invariant_names(config), (name, v.invariant)
        seen.setdefault(sc.protocol, set()).add(v.invariant)
    # The presets break invariants of every family, so the check above means something.
    assert {"saga", "saga-choreography", "tcc", "3pc"} <= set(seen)
    assert {"lost event", "invented event"} <= seen["saga-choreography"]
    assert any(n.startswith(saga.DOMAIN) for n in seen["saga"])


def test_every_registered_protocol_lists_its_invariants():
    for name, protocol in PROTOCOLS.items():
        sc = txlib.Scenario(name)
        names = protocol.invariant_names(protocol.make_config(sc.participants, sc.options))
        assert names and len(set(names)) == len(names), name


@pytest.mark.parametrize("protocol", ["saga", "saga-choreography"])
def test_a_misspelt_invariant_of_a_saga_search_is_an_error(protocol):
    result = explore(protocol, max_states=2_000)
    with pytest.raises(TxlibError, match="did you mean 'idempotency'") as caught:
        result.violation("idempotence")
    assert "semantic atomicity" in str(caught.value)
    broken = {f.invariant for f in result.violations}
    for name in result.invariants or ():  # a real name: its finding, or None
        found = result.violation(name)
        assert (found is not None and found.invariant == name) == (name in broken)


def test_a_domain_rule_is_named_as_the_search_reports_it():
    result = explore("saga", max_states=2_000)
    assert "domain: stock never negative" in result.invariants
    with pytest.raises(TxlibError, match="did you mean 'domain: stock never negative'"):
        result.violation("domain: stock never negativ")


@pytest.mark.parametrize(("model", "typo", "meant"), [
    (TCommit(2), "TCConsistant", "TCConsistent"),
    (TwoPhase(2), "TPTypeOk", "TPTypeOK"),
    (PaxosCommitSpec(rms=1, acceptors=1), "PCTypeOk", "PCTypeOK")])
def test_a_misspelt_invariant_of_a_tla_model_is_an_error(model, typo, meant):
    result = check(model)
    with pytest.raises(TxlibError, match=f"did you mean '{meant}'"):
        result.violation(typo)
    assert result.violation(meant) is None


class MislabelledSaga(SagaOrchestration):
    """A saga whose checks report a name its list leaves out (a protocol author's slip)."""

    name = "saga-mislabelled"

    def violations(self, history: Any) -> list[Violation]:
        return [*super().violations(history), Violation("made up", history.steps, "always")]


def test_a_protocol_reporting_an_unlisted_invariant_stops_the_search():
    register(MislabelledSaga())
    try:
        with pytest.raises(TxlibError, match="'made up', which its invariant_names"):
            explore("saga-mislabelled", max_states=2_000)
    finally:
        unregister("saga-mislabelled")


class UnlistedSaga(SagaOrchestration):
    """A protocol of one's own that does not list its invariants (Protocol's default)."""

    name = "saga-unlisted"

    def invariant_names(self, config: Any) -> tuple[str, ...] | None:
        return Protocol.invariant_names(self, config)


def test_a_protocol_that_does_not_list_its_invariants_can_still_be_explored():
    register(UnlistedSaga())
    try:
        result = explore("saga-unlisted", max_states=2_000)
        assert result.invariants is None and result.states > 0
        assert result.violation("idempotence") is None  # it cannot tell a typo
    finally:
        unregister("saga-unlisted")

"""Sagas are not isolated: lost update and dirty read between two concurrent sagas, the
semantic-lock and reordering countermeasures, and idempotent compensations."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import txlib
from txlib.presets import NAMED_SCENARIOS
from txlib.presets.design import DESIGN_SCENARIOS
from txlib.properties.saga import effects, final_stores
from txlib.sagas import get_saga
from txlib.sagas.isolation import DIRTY_READ, LOST_UPDATE, VARIANTS, stock_saga
from txlib.viz import console
from txlib.viz.widgets import Lab

LOST = ("domain: stock matches the moves on record",
        "the inventory shows 10 ITEM-1, but 10 at the start plus the moves on record (B: -3) "
        "make 7: the count is off by +3, so a change to it was lost or applied twice")
NEGATIVE = ("domain: stock never negative",
            "the stock of ITEM-1 is -2: 2 units were sold that do not exist")
UNDONE_TWICE = ("idempotency", "move_stock was compensated 2 times")
TWICE = ("domain: stock matches the moves on record",
         "the inventory shows 12 ITEM-1, but 10 at the start plus the moves on record (none) "
         "make 10: the count is off by +2, so a change to it was lost or applied twice")

EXPECTED = {
    "isolation-lost-update": ("inconsistent", [LOST], 10),
    "isolation-lost-update-commutative": ("compensated", [], 7),
    "isolation-lost-update-semantic-lock": ("compensated", [], 10),
    "isolation-lost-update-reordered": ("compensated", [], 7),
    "isolation-dirty-read": ("inconsistent", [NEGATIVE], -2),
    "isolation-dirty-read-semantic-lock": ("compensated", [], 10),
    "isolation-dirty-read-reordered": ("compensated", [], 10),
    "compensation-not-idempotent": ("inconsistent", [UNDONE_TWICE, TWICE], 12),
    "compensation-idempotent": ("compensated", [], 10),
}


def stores(run: txlib.Run) -> dict:
    return final_stores(get_saga(run.scenario.options["saga"]), run.logs)


def instance_effects(run: txlib.Run) -> list[tuple[str, str, str]]:
    """(saga id, do/undo, step) of every local transaction, in time order."""
    found = []
    for sid in ("A", "B", "S1"):
        found += [(t, sid, kind, step) for t, _, kind, step in effects(run.logs, sid)]
    return [(sid, kind, step) for _, sid, kind, step in sorted(found)]


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items(), ids=list(EXPECTED))
def test_each_named_scenario_ends_as_described(name, expected):
    outcome, violations, stock = expected
    run = txlib.scenario(name).run()
    assert run.outcome == outcome
    assert [(v.invariant, v.reason) for v in run.violations] == violations
    assert stores(run)["inventory"]["stock"] == {"ITEM-1": stock}


def test_every_design_scenario_is_named_prefixed_and_tested():
    names = [s.name for s in DESIGN_SCENARIOS]
    assert len(set(names)) == len(names)
    assert all(NAMED_SCENARIOS[n] is s for n, s in zip(names, DESIGN_SCENARIOS, strict=True))
    assert all(n.split("-")[0] in ("isolation", "compensation", "tcc") for n in names)
    assert set(EXPECTED) | set(txlib.scenarios("tcc")) == set(names)
    for s in DESIGN_SCENARIOS:
        assert "\n" not in s.description and s.description.endswith(".")
        assert len(s.description) <= 160, s.name


def test_the_lost_update_interleaves_b_between_a_and_its_compensation():
    run = txlib.scenario("isolation-lost-update").run()
    assert instance_effects(run) == [("A", "do", "move_stock"), ("B", "do", "move_stock"),
                                     ("B", "do", "settle"), ("A", "undo", "move_stock")]
    assert run.states["orchestrator"] == "COMPENSATED"
    assert stores(run)["inventory"]["moves"] == {"B": -3}
    assert stores(run)["payment"]["bills"]["B"]["status"] == "SETTLED"


def test_a_commutative_compensation_keeps_bs_sale():
    run = txlib.scenario("isolation-lost-update-commutative").run()
    assert instance_effects(run) == instance_effects(txlib.scenario("isolation-lost-update").run())
    assert stores(run)["inventory"]["moves"] == {"B": -3}


def test_the_semantic_lock_refuses_b_while_a_is_pending():
    for name in ("isolation-lost-update-semantic-lock", "isolation-dirty-read-semantic-lock"):
        run = txlib.scenario(name).run()
        assert instance_effects(run) == [("A", "do", "move_stock"), ("A", "undo", "move_stock")]
        fails = [e.message.payload["reason"] for e in run.trace.of_kind("send")
                 if e.message.type == "FAIL"]
        assert fails[0] == ("ITEM-1 is PENDING: saga A has not finished its move; "
                            "try again later")
        assert stores(run)["inventory"]["pending"] == {}


def test_reordering_fails_a_before_it_touches_the_stock():
    lost = txlib.scenario("isolation-lost-update-reordered").run()
    assert instance_effects(lost) == [("B", "do", "settle"), ("B", "do", "move_stock")]
    dirty = txlib.scenario("isolation-dirty-read-reordered").run()
    assert instance_effects(dirty) == [("B", "do", "settle"), ("B", "undo", "settle")]
    assert stores(dirty)["payment"]["bills"]["B"]["status"] == "REFUNDED"


def test_the_dirty_read_sells_units_that_a_compensation_takes_back():
    run = txlib.scenario("isolation-dirty-read").run()
    assert instance_effects(run) == [("A", "do", "move_stock"), ("B", "do", "move_stock"),
                                     ("B", "do", "settle"), ("A", "undo", "move_stock")]
    ok = [e for e in run.trace.of_kind("send") if e.message.type == "OK"
          and e.message.payload["saga_id"] == "B" and e.message.payload["step"] == "move_stock"]
    assert ok[0].message.payload["updates"] == {"stock_before": 15}, "B read A's restock"


@pytest.mark.parametrize("seed", range(25))
def test_the_interleaving_does_not_depend_on_the_seed(seed):
    for name, (outcome, violations, _) in EXPECTED.items():
        if name.startswith("isolation-"):
            run = txlib.scenario(name).replace(seed=seed).run(record=False)
            assert run.outcome == outcome, (name, seed)
            assert [(v.invariant, v.reason) for v in run.violations] == violations


def test_the_duplicate_compensation_shows_in_the_data():
    bad = txlib.scenario("compensation-not-idempotent").run()
    good = txlib.scenario("compensation-idempotent").run()
    for run in (bad, good):
        undos = [e for e in run.trace.of_kind("deliver") if e.message.type == "UNDO"]
        assert len(undos) == 2, "the network delivered the compensation twice"
    assert [k for _, _, k, _ in effects(bad.logs)] == ["do", "undo", "undo"]
    assert [k for _, _, k, _ in effects(good.logs)] == ["do", "undo"]
    assert any("answered from the log" in e.detail for e in good.trace.of_kind("effect"))


def test_a_restore_compensation_is_idempotent_but_loses_updates():
    """Writing back an old value twice gives the same data: the trouble is elsewhere."""
    run = txlib.scenario("compensation-not-idempotent").replace(options={"saga": "stock"}).run()
    assert stores(run)["inventory"]["stock"] == {"ITEM-1": 10}
    # The second write changed nothing, so it is not a second effect.
    assert run.violations == () and run.outcome == "compensated"


def test_the_variants_differ_only_in_what_they_say():
    assert list(VARIANTS) == ["stock", "stock-locked", "stock-reordered", "stock-commutative",
                              "stock-commutative-locked", "stock-commutative-reordered"]
    assert get_saga("stock-reordered").step_names == ("settle", "move_stock")
    assert get_saga("stock-locked").step_names == ("move_stock", "settle", "confirm_move")
    assert get_saga("stock-locked").find("confirm_move").pivot
    for saga in VARIANTS.values():
        assert get_saga(saga.name) is saga
    with pytest.raises(txlib.TxlibError, match="'undo'"):
        stock_saga("stock-bad", compensation="undo")


def test_the_instances_are_the_documented_ones():
    assert [i["start"] for i in LOST_UPDATE] == [0, 10] == [i["start"] for i in DIRTY_READ]
    assert [i["context"].get("payment", "ok") for i in DIRTY_READ] == ["declined", "ok"]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_scenario_works_in_the_lab_and_the_console(name):
    run = txlib.scenario(name).run()
    lab = Lab(txlib.scenario(name))
    lab.to_end()
    assert lab.cursor == run.steps and run.outcome in lab.status.value
    out = io.StringIO()
    console.show(run, console=Console(file=out, width=120, force_terminal=False))
    assert name in out.getvalue() and run.outcome.upper() in out.getvalue()


def test_runs_are_deterministic():
    for name in EXPECTED:
        s = txlib.scenario(name)
        assert s.run().trace.to_jsonl() == s.run().trace.to_jsonl()
        assert txlib.Scenario.from_json(s.to_json()).run().outcome == s.run().outcome

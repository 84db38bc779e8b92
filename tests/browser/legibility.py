"""The pictures the legibility test reads, and the measure it applies in Chromium.

The corpus: the full space-time diagram of every named scenario, every static SVG in the
committed notebooks, the diagrams of a seeded set of random fault plans (2PC and 3PC
with 3 to 5 participants, both saga styles), and edge cases (8 and 64 participants,
long and non-ASCII names, a long saga and several instances, Paxos Commit with
acceptors down, partitions healed, the explorer's counterexample: each run's diagram and
its state machines at its most crowded step and at its end). The measure, taken in the page: each
``<text>``'s rendered box; two boxes of one picture that overlap by more than
``OVERLAP_PX2`` square pixels are a collision, and a box that reaches outside its picture
is a clipped label. This module is plain Python (no pytest), so a developer can also run
it as a script: ``python tests/browser/legibility.py`` prints the counts.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
OVERLAP_PX2 = 4.0  # more than this many square pixels of text on text is a collision
CLIP_TOLERANCE_PX = 0.5
RANDOM_PLANS = 32
RANDOM_SEED = 20240917

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Picture:
    name: str  # where it comes from, for the failure message
    svg: str


# --- the corpus ------------------------------------------------------------------------
def named_scenario_pictures() -> list[Picture]:
    import txlib
    from txlib.viz.static import diagram

    return [Picture(f"scenario {name}", diagram(txlib.scenario(name).run()).svg)
            for name in txlib.scenarios()]


def notebook_pictures() -> list[Picture]:
    out = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for index, cell in enumerate(nb["cells"]):
            for output in cell.get("outputs", []):
                svg = output.get("data", {}).get("image/svg+xml")
                if svg:
                    text = svg if isinstance(svg, str) else "".join(svg)
                    out.append(Picture(f"{path.name} cell {index}", text))
    return out


def random_plan(rng: random.Random) -> Any:
    """A random scenario: 2PC or 3PC with 3 to 5 participants and up to 4 faults, or a
    saga (either style) with up to 3 faults."""
    import txlib

    protocol = rng.choice(["2pc", "3pc", "2pc", "3pc", "saga", "saga-choreography"])
    if protocol in ("2pc", "3pc"):
        participants = [f"p{i}" for i in range(1, rng.randint(3, 5) + 1)]
        scenario = txlib.Scenario(protocol, tuple(participants), seed=rng.randint(0, 999))
    else:
        scenario = txlib.Scenario(protocol, seed=rng.randint(0, 999))
    nodes = list(scenario.roster.names)
    faults = []
    for _ in range(rng.randint(1, 4)):
        step = rng.randint(1, 14)
        kind = rng.choice(["crash", "crash", "drop", "duplicate", "delay", "partition",
                           "slow"])
        node = rng.choice(nodes)
        if kind == "crash":
            faults.append(txlib.crash(node, at_step=step))
            if rng.random() < 0.6:
                faults.append(txlib.recover(node, at_time=rng.randint(60, 400)))
        elif kind == "drop":
            faults.append(txlib.drop(dst=node, at_step=step))
        elif kind == "duplicate":
            faults.append(txlib.duplicate(dst=node, at_step=step))
        elif kind == "delay":
            faults.append(txlib.delay(rng.randint(20, 150), dst=node, at_step=step))
        elif kind == "partition":
            faults.append(txlib.partition([node], at_step=step))
            if rng.random() < 0.6:
                faults.append(txlib.heal(at_time=rng.randint(80, 400)))
        else:
            faults.append(txlib.slow(node, rng.randint(10, 80), at_step=step))
    return scenario.replace(faults=tuple(faults))


def random_pictures(count: int = RANDOM_PLANS, seed: int = RANDOM_SEED) -> list[Picture]:
    from txlib.errors import TxlibError
    from txlib.viz.static import diagram

    rng = random.Random(seed)
    out: list[Picture] = []
    while len(out) < count:
        scenario = random_plan(rng)
        try:
            run = scenario.run()
        except TxlibError:
            continue  # a plan the protocol refuses (e.g. a fault naming no such node)
        plan = "; ".join(f.describe() for f in scenario.faults)
        out.append(Picture(f"random {scenario.protocol} {len(scenario.roster.names)} "
                           f"nodes seed {scenario.seed}: {plan}", diagram(run).svg))
    return out


LONG_NAMES = ("inventory-service-eu", "payments-gateway-usw", "shipping-dispatcher1")
UNICODE_NAMES = ("zürich", "東京", "são-paulo")
STEP_NAMES = ("reserve_inventory_in_warehouse", "authorize_credit_card_payment",
              "check_fraud_score_zurich", "allocate_shipping_slot_now",
              "award_loyalty_points_bonus", "send_confirmation_email_x",
              "capture_authorized_payment", "print_shipping_label_pdf",
              "notify_customer_by_sms_x", "archive_order_for_auditing",
              "update_sales_dashboard_kpi", "close_order_in_erp_system")


def long_saga() -> Any:
    """A saga of twelve steps with long names over six services (the pivot is the 7th)."""
    import txlib

    def act(store: dict[str, Any], ctx: Any) -> None:
        store["n"] += 1

    def undo(store: dict[str, Any], ctx: Any) -> None:
        store["n"] -= 1

    services = (*LONG_NAMES, "loyalty-points-servc", "notification-service",
                "fraud-checker-zurich")
    saga = txlib.Saga("legibility-long-saga", services={s: {"n": 0} for s in services})
    for i, name in enumerate(STEP_NAMES):
        saga.step(name, service=services[i % len(services)], action=act,
                  compensation=undo if i < 6 else None, pivot=i == 6)
    return saga


def edge_runs() -> dict[str, Any]:
    """Runs at the edges of what a learner can ask for: the most participants (8, the
    explorer's limit, and 64, simulate's), long and non-ASCII names, a long saga and
    several instances, Paxos Commit with acceptors down, partitions healed, and the
    explorer's counterexample."""
    import txlib

    saga = long_saga()
    instances = [{"saga_id": f"order-{i:04d}", "start": 10 * i} for i in range(5)]
    return {
        "2pc 8 participants": txlib.simulate("2pc", participants=8),
        "3pc 8 participants": txlib.simulate("3pc", participants=8),
        "2pc 64 participants": txlib.simulate("2pc", participants=64),
        "2pc 20-character names": txlib.simulate("2pc", participants=list(LONG_NAMES)),
        "2pc non-ASCII names": txlib.simulate("2pc", participants=list(UNICODE_NAMES)),
        "3pc long names, coordinator crash": txlib.simulate(
            "3pc", participants=list(LONG_NAMES), faults=[txlib.crash("coordinator",
                                                                       at_step=5)]),
        "long saga": saga.simulate(),
        "long saga, a step fails": saga.simulate(
            faults=[txlib.fail_step("allocate_shipping_slot_now")]),
        "long saga, choreographed": saga.simulate(
            protocol="saga-choreography",
            faults=[txlib.fail_step("capture_authorized_payment", times=1)]),
        "long saga, 5 instances": saga.simulate(instances=instances),
        "saga, 4 instances": txlib.simulate(
            "saga", instances=[{"saga_id": f"S{i}", "start": 5 * i} for i in range(4)]),
        "paxos-commit, 2 of 3 acceptors down": txlib.simulate(
            "paxos-commit", participants=3, acceptors=3,
            faults=[txlib.crash("a1", at_step=2), txlib.crash("a2", at_step=3)]),
        "paxos-commit, 3 of 5 acceptors down, leader too": txlib.simulate(
            "paxos-commit", participants=3, acceptors=5,
            faults=[txlib.crash("coordinator", at_step=6), txlib.crash("a1", at_step=2),
                    txlib.crash("a2", at_step=3), txlib.crash("a3", at_step=4),
                    txlib.recover("a1", at_time=300)]),
        "3pc partition and heal": txlib.simulate(
            "3pc", participants=4, faults=[txlib.partition(["p1", "p2"], at_step=5),
                                           txlib.heal(at_time=200)]),
        "2pc two partitions healed, long names": txlib.simulate(
            "2pc", participants=[*LONG_NAMES[:2], *UNICODE_NAMES[:2]],
            faults=[txlib.partition([LONG_NAMES[0], UNICODE_NAMES[0]], at_step=3),
                    txlib.heal(at_time=150), txlib.partition([UNICODE_NAMES[1]], at_time=160),
                    txlib.heal(at_time=400)]),
        "3pc explorer counterexample": txlib.explore(
            "3pc", partitions=True, max_crashes=0).violations[0].run,
    }


def edge_case_pictures() -> list[Picture]:
    """The space-time diagram of each of :func:`edge_runs`, and each role's state machine
    at the start, at the run's most crowded step (the most nodes of a role in one state
    other than its first) and at its end."""
    from txlib.viz.charts import role_charts
    from txlib.viz.frames import last_index_of_step
    from txlib.viz.static import diagram

    out = []
    for name, run in edge_runs().items():
        out.append(Picture(f"edge case {name}", diagram(run).svg))
        best, crowded = 0, 0
        for step in range(run.steps + 1):
            event = run.trace[max(0, last_index_of_step(run.trace, step))]
            counts: dict[tuple[str, str | None], int] = {}
            for node, role in run.roles.items():
                key = (role, event.states.get(node))
                if key[1] != run.machines[role].initial:  # all start there: step 0
                    counts[key] = counts.get(key, 0) + 1
            if max(counts.values(), default=0) > best:
                best, crowded = max(counts.values()), step
        for step in dict.fromkeys((0, crowded, run.steps)):
            out += [Picture(f"edge case {name}: {role} state machine after step {step}", svg)
                    for role, svg in role_charts(run, step).items()]
    return out


def corpus() -> dict[str, list[Picture]]:
    return {"named scenarios": named_scenario_pictures(),
            "notebook pictures": notebook_pictures(),
            "random fault plans": random_pictures(),
            "edge cases": edge_case_pictures()}


# --- the measure -----------------------------------------------------------------------
PAGE_STYLE = "body{margin:8px;font-family:sans-serif;color:#111;background:#fff}" \
             ".pic{margin:12px 0;display:block}"

MEASURE_JS = """([minArea, tolerance]) => {
  const out = [];
  for (const holder of document.querySelectorAll('.pic')) {
    const svg = holder.querySelector('svg');
    if (!svg) { out.push({name: holder.dataset.name, overlaps: [], clipped: [], texts: 0});
                continue; }
    const frame = svg.getBoundingClientRect();
    const boxes = [];
    for (const t of svg.querySelectorAll('text')) {
      const r = t.getBoundingClientRect();
      if (r.width <= 0 || r.height <= 0) continue;
      boxes.push({r, s: t.textContent.slice(0, 40)});
    }
    const overlaps = [], clipped = [];
    for (let i = 0; i < boxes.length; i++) {
      const a = boxes[i].r;
      if (a.left < frame.left - tolerance || a.top < frame.top - tolerance ||
          a.right > frame.right + tolerance || a.bottom > frame.bottom + tolerance)
        clipped.push(boxes[i].s);
      for (let j = i + 1; j < boxes.length; j++) {
        const b = boxes[j].r;
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 0 && h > 0 && w * h > minArea) overlaps.push([boxes[i].s, boxes[j].s]);
      }
    }
    out.push({name: holder.dataset.name, overlaps, clipped, texts: boxes.length});
  }
  return out;
}"""


def page_html(pictures: list[Picture]) -> str:
    body = "".join(f'<div class="pic" data-name="{escape(p.name)}">{p.svg}</div>'
                   for p in pictures)
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{PAGE_STYLE}</style>"
            f"</head><body>{body}</body></html>")


def measure(page: Any, pictures: list[Picture]) -> list[dict[str, Any]]:
    """Each picture's colliding text pairs and clipped labels, as Chromium renders them."""
    page.set_content(page_html(pictures))
    page.evaluate("document.fonts.ready")
    result: list[dict[str, Any]] = page.evaluate(MEASURE_JS, [OVERLAP_PX2, CLIP_TOLERANCE_PX])
    return result


def chunks(pictures: list[Picture], size: int = 40) -> Iterator[list[Picture]]:
    for i in range(0, len(pictures), size):
        yield pictures[i:i + size]


def main() -> None:
    """Print the counts per part of the corpus (and the worst pictures)."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from conftest import CHROMIUM_ARGS, find_chromium

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(),
                                    args=[*CHROMIUM_ARGS, "--no-sandbox"])
        page = browser.new_page()
        for part, pictures in corpus().items():
            results = [r for chunk in chunks(pictures) for r in measure(page, chunk)]
            pairs = sum(len(r["overlaps"]) for r in results)
            clipped = sum(len(r["clipped"]) for r in results)
            clean = sum(1 for r in results if not r["overlaps"] and not r["clipped"])
            print(f"{part}: {len(results)} pictures, {pairs} overlapping pairs, "
                  f"{clipped} clipped labels, {clean} clean")
            for r in sorted(results, key=lambda r: -len(r["overlaps"]) - len(r["clipped"]))[:8]:
                if r["overlaps"] or r["clipped"]:
                    print(f"   {len(r['overlaps']):3d} pairs {len(r['clipped']):2d} clipped  "
                          f"{r['name'][:110]}")
                    if "-v" in sys.argv:
                        print("        ", r["overlaps"][:6], r["clipped"][:4])
        browser.close()


if __name__ == "__main__":
    main()

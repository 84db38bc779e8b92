"""The pictures the legibility test reads, and the measure it applies in Chromium.

The corpus: the full space-time diagram of every named scenario, every static SVG in the
committed notebooks, and the diagrams of a seeded set of random fault plans (2PC and 3PC
with 3 to 5 participants, both saga styles). The measure, taken in the page: each
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


def corpus() -> dict[str, list[Picture]]:
    return {"named scenarios": named_scenario_pictures(),
            "notebook pictures": notebook_pictures(),
            "random fault plans": random_pictures()}


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

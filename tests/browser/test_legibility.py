"""No label on a label: every picture of the course, measured in Chromium with real fonts.

For the full space-time diagram of every named scenario, every static SVG in the
committed notebooks, the diagrams of a seeded set of random fault plans, and edge cases
(the most participants, long and non-ASCII names, long sagas; diagrams and state
machines), the boxes of all ``<text>`` elements as Chromium renders them: no two overlap
by more than 4 px², and none reaches outside its picture. See ``legibility.py`` beside
this file for the corpus and the measure (also runnable as a script that prints the
counts).
"""

from __future__ import annotations

from typing import Any

import pytest
from legibility import Picture, chunks, corpus, measure

pytestmark = pytest.mark.browser

PARTS = corpus()


def report(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        if r["overlaps"] or r["clipped"]:
            lines.append(f"{r['name']}: {len(r['overlaps'])} overlapping pairs "
                         f"{r['overlaps'][:4]}, {len(r['clipped'])} clipped {r['clipped'][:4]}")
    return "\n".join(lines)


@pytest.mark.parametrize("part", list(PARTS))
def test_no_text_on_text_and_no_clipped_label(part: str, browser: Any) -> None:
    pictures: list[Picture] = PARTS[part]
    assert len(pictures) >= 30, f"{part}: only {len(pictures)} pictures"
    page = browser.new_page()
    try:
        results = [r for chunk in chunks(pictures) for r in measure(page, chunk)]
    finally:
        page.close()
    assert len(results) == len(pictures)
    assert all(r["texts"] > 0 for r in results), "a picture with no text was measured"
    bad = [r for r in results if r["overlaps"] or r["clipped"]]
    assert not bad, (f"{part}: {len(bad)} of {len(results)} pictures have text on text or "
                     f"clipped labels:\n" + report(bad))

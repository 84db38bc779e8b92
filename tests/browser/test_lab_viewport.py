"""The lab on a laptop screen: JupyterLab at 1366x768 with the file browser open.

Lesson 02's lab (``seed-transfer``) after three steps must fit the notebook's width with
no horizontal scroll; its controls, the diagram around the current step and the outcome
line must be in view together; the diagram must be its largest element and readable at
100% zoom (no text under 10 px in the diagram, nor in any other picture of the lab,
each role's state machine shown in turn); axe-core (vendored, injected into the page: nothing
is fetched) must find no WCAG 2.1 AA violation; the step box must answer the arrow
keys; the step's new arrow grows and its marks fade in, except under
``prefers-reduced-motion``. Lesson 05's lab (``3pc-partition-split``) must show all
four lanes. Screenshots at 1366x768 and 1920x1080 go to ``tests/browser/artifacts/``;
with ``TXLIB_WRITE_DOCS=1`` the 1366x768 one of lesson 02's lab also becomes
``docs/lab.png`` (the README's picture).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # then the `browser` fixture skips (or, under CI, fails)
    expect = None

from legibility import corpus, page_html

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
LAPTOP = {"width": 1366, "height": 768}
DESKTOP = {"width": 1920, "height": 1080}
TIMEOUT = 90_000
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
MIN_TEXT_PX = 10.0
MIN_DIAGRAM_SHARE = 0.35  # of the lab's area, with the state machines' tab open
NOTEBOOK = "lab_viewport.ipynb"
LABS = {"02": 'txlib.lab("seed-transfer")', "05": 'txlib.lab("3pc-partition-split")'}


def write_notebook(folder: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import txlib")] + [
        nbformat.v4.new_code_cell(code) for code in LABS.values()]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nbformat.write(nb, folder / NOTEBOOK)


def axe_violations(page: Any, selector: str) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result: list[dict[str, Any]] = page.evaluate(
        """async ([selector, tags]) => {
             const r = await axe.run(document.querySelectorAll(selector),
                                     {runOnly: {type: 'tag', values: tags}});
             return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
           }""", [selector, WCAG])
    return result


SMALLEST_TEXT_JS = """lab => [...lab.querySelectorAll('svg')].filter(
    svg => svg.getClientRects().length && svg.viewBox.baseVal && svg.viewBox.baseVal.width)
  .flatMap(svg => {
    const k = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    return [...svg.querySelectorAll('text')].filter(t => t.getClientRects().length
        && t.textContent.trim())
      .map(t => [Math.round(parseFloat(getComputedStyle(t).fontSize) * k * 100) / 100,
                 t.textContent.trim().slice(0, 30)]); })
  .sort((a, b) => a[0] - b[0])"""


def smallest_text(lab: Any) -> list[float]:
    """The rendered size (px) of every visible text of every picture in the lab, the
    smallest first."""
    return [size for size, _text in lab.evaluate(SMALLEST_TEXT_JS)]


def box(locator: Any) -> dict[str, float]:
    b = locator.bounding_box()
    assert b is not None, f"{locator} is not rendered"
    return b


def inside(b: dict[str, float], viewport: dict[str, int]) -> bool:
    return (b["x"] >= -0.5 and b["y"] >= -0.5 and b["x"] + b["width"] <= viewport["width"] + 0.5
            and b["y"] + b["height"] <= viewport["height"] + 0.5)


@pytest.fixture(scope="module")
def lab_page(browser: Any, lab_server: Any) -> Any:
    write_notebook(lab_server.notebooks)
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(f"{lab_server.url}/lab/tree/{NOTEBOOK}?reset")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(panel.locator(".jp-Toolbar-kernelName")).to_have_text(
        "Python 3 (ipykernel)", timeout=TIMEOUT)
    expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
        "data-status", "idle", timeout=TIMEOUT)
    if not page.locator("#filebrowser").is_visible():
        page.get_by_role("tab", name=re.compile("File Browser")).click()
    expect(page.locator("#filebrowser")).to_be_visible()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    labs = panel.locator(".jp-OutputArea-output .txlab")
    try:
        expect(labs).to_have_count(len(LABS), timeout=TIMEOUT)
    except AssertionError:
        page.screenshot(path=ARTIFACTS / "lab-viewport-failure.png")
        raise
    yield page
    context.close()
    lab_server.shut_down_kernels()


def the_lab(page: Any, which: str) -> Any:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .txlab").nth(list(LABS).index(which))


def status(lab: Any) -> Any:
    return lab.locator(".widget-html-content").filter(
        has_text=re.compile(r"^\s*(step \d+ of \d+|\S+ [a-z]+ after \d+ steps)"))


def at_top(page: Any, lab: Any) -> None:
    lab.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_function("e => Math.abs(e.getBoundingClientRect().top - "
                           "document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) "
                           ".jp-WindowedPanel-outer, .jp-NotebookPanel:not(.lm-mod-hidden) "
                           ".jp-Notebook').getBoundingClientRect().top) < 40",
                           arg=lab.element_handle())


def test_lesson_02_lab_fits_a_laptop_screen(lab_page: Any, artifacts: Path) -> None:
    page = lab_page
    lab = the_lab(page, "02")
    for _ in range(3):
        lab.get_by_role("button", name="▶", exact=True).click()
    expect(status(lab)).to_have_text(re.compile(r"^\s*step 3 of \d+"))
    page.mouse.move(0, 0)  # no hover effect in the screenshots
    at_top(page, lab)
    page.screenshot(path=artifacts / "lab-02-1366x768.png")

    # No horizontal scroll, in the notebook or inside the lab.
    scroll = page.evaluate("""() => [...document.querySelectorAll(
        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer, ' +
        '.jp-NotebookPanel:not(.lm-mod-hidden) .txlab, ' +
        '.jp-NotebookPanel:not(.lm-mod-hidden) .txlab *')]
        .filter(e => e.scrollWidth > e.clientWidth + 1 &&
                     getComputedStyle(e).overflowX !== 'visible')
        .map(e => e.className.toString().slice(-40) + ' ' + e.scrollWidth + '>' +
                  e.clientWidth)""")
    wide = lab.evaluate("""lab => { const r = lab.getBoundingClientRect().right;
        return [...lab.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > r + 1)
          .slice(0, 5).map(e => e.tagName + '.' + e.className.toString().slice(-50) + ' ' +
                           Math.round(e.getBoundingClientRect().right - r)); }""")
    assert scroll == [], f"horizontal scroll in {scroll}; wider than the lab: {wide}"

    # Controls, the diagram around the current step and the outcome line, together.
    controls = lab.get_by_role("button", name="⏮", exact=True).locator("..")
    diagram = lab.locator("svg.txst")
    now = lab.locator("svg.txst g.now")
    for name, part in (("controls", controls), ("outcome line", status(lab)),
                       ("diagram", diagram), ("current step", now)):
        assert inside(box(part), LAPTOP), f"the lab's {name} is not in view: {box(part)}"

    # The diagram is the lab's largest element, readable at 100%.
    lab_box, diagram_box = box(lab), box(diagram)
    share = diagram_box["width"] * diagram_box["height"] / (lab_box["width"] * lab_box["height"])
    assert share >= MIN_DIAGRAM_SHARE, f"the diagram is {share:.0%} of the lab"
    smallest = diagram.evaluate("""svg => {
        const k = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
        return Math.min(...[...svg.querySelectorAll('text')].map(
            t => parseFloat(getComputedStyle(t).fontSize) * k));
    }""")
    assert smallest >= MIN_TEXT_PX - 0.01, f"diagram text of {smallest:.1f} px"
    # ... and so is every other picture in it: each role's state machine, shown in turn.
    roles = lab.locator(".widget-toggle-buttons button")
    assert roles.count() == 2
    for i in range(roles.count()):
        roles.nth(i).click()
        expect(roles.nth(i)).to_have_class(re.compile(r"\bmod-active\b"))
        small = smallest_text(lab)
        assert small and min(small) >= MIN_TEXT_PX - 0.01, f"text under 10 px: {small[:5]}"
        # One role's machine at a time, at its own size (its text is 10 px): smaller
        # than the diagram, which stays the lab's largest element.
        shown = lab.locator("svg.txlib-statechart:visible")
        expect(shown).to_have_count(1)
        b = box(shown)
        assert b["width"] * b["height"] < diagram_box["width"] * diagram_box["height"]
    roles.first.click()
    page.mouse.move(0, 0)  # no hover effect in the screenshots

    # The whole lab (for the README): a viewport tall enough to hold it.
    page.set_viewport_size({"width": LAPTOP["width"],
                            "height": min(4000, int(box(lab)["height"]) + 300)})
    lab.scroll_into_view_if_needed()
    lab.screenshot(path=artifacts / "lab-02.png")
    page.set_viewport_size(LAPTOP)
    at_top(page, lab)
    if os.environ.get("TXLIB_WRITE_DOCS") == "1":
        shutil.copy(artifacts / "lab-02.png", ROOT / "docs" / "lab.png")

    violations = axe_violations(page, ".jp-NotebookPanel:not(.lm-mod-hidden) .txlab")
    assert violations == [], json.dumps(violations, indent=1)


def test_the_lab_steps_from_the_keyboard_and_moves(lab_page: Any) -> None:
    page = lab_page
    lab = the_lab(page, "02")
    at_top(page, lab)
    box_ = lab.get_by_label("step", exact=True)
    box_.fill("2")
    box_.press("Enter")
    expect(status(lab)).to_have_text(re.compile(r"^\s*step 2 of \d+"))
    box_.focus()
    page.keyboard.press("ArrowUp")
    expect(status(lab)).to_have_text(re.compile(r"^\s*step 3 of \d+"))
    page.keyboard.press("ArrowDown")
    expect(status(lab)).to_have_text(re.compile(r"^\s*step 2 of \d+"))
    # Every button can be reached with Tab.
    unreachable = lab.locator("button").evaluate_all(
        "bs => bs.filter(b => b.tabIndex < 0 || b.disabled).map(b => b.textContent)")
    assert unreachable == []
    # Motion: the step's new arrow grows, its marks fade in; none with reduced motion.
    animations = lab.locator("svg.txst").evaluate("""svg => [
        ...[...svg.querySelectorAll('.msg.current.grow line')].map(
            l => getComputedStyle(l).animationName),
        ...[...svg.querySelectorAll('.current.appear')].map(
            g => getComputedStyle(g).animationName)]""")
    assert animations and set(animations) <= {"txst-grow", "txst-fade"}, animations
    page.emulate_media(reduced_motion="reduce")
    still = lab.locator("svg.txst").evaluate("""svg => [...svg.querySelectorAll(
        '.grow line, .appear')].map(e => getComputedStyle(e).animationName)""")
    page.emulate_media(reduced_motion="no-preference")
    assert still and set(still) == {"none"}, still


def test_lesson_05_lab_shows_every_lane(lab_page: Any, artifacts: Path) -> None:
    page = lab_page
    lab = the_lab(page, "05")
    for _ in range(8):
        lab.get_by_role("button", name="▶", exact=True).click()
    expect(status(lab)).to_have_text(re.compile(r"^\s*step 8 of \d+"))
    page.mouse.move(0, 0)
    at_top(page, lab)
    heads = lab.locator("svg.txst g.head")
    expect(heads).to_have_count(4)
    for i in range(4):
        assert inside(box(heads.nth(i)), LAPTOP), f"lane {i} is out of view"
    page.screenshot(path=artifacts / "lab-05-1366x768.png")
    page.set_viewport_size(DESKTOP)
    at_top(page, lab)
    page.screenshot(path=artifacts / "lab-05-1920x1080.png")
    at_top(page, the_lab(page, "02"))
    page.screenshot(path=artifacts / "lab-02-1920x1080.png")
    page.set_viewport_size(LAPTOP)


def test_static_diagrams_have_no_accessibility_violation(browser: Any) -> None:
    pictures = corpus()["named scenarios"][:12]
    page = browser.new_page()
    try:
        page.set_content(page_html(pictures))
        violations = axe_violations(page, ".pic")
    finally:
        page.close()
    assert violations == [], json.dumps(violations, indent=1)


def message_line(lab: Any) -> Any:
    """The lab's message line (its last HTML child): notes and errors of an action."""
    return lab.locator(":scope > .widget-html").last


def go_to(lab: Any, step: int) -> None:
    box_ = lab.get_by_label("step", exact=True)
    box_.fill(str(step))
    box_.press("Enter")
    expect(status(lab)).to_have_text(re.compile(rf"^\s*step {step} of \d+"))


def outcome(lab: Any) -> str:
    lab.get_by_role("button", name="⏭", exact=True).click()
    expect(status(lab)).to_have_text(re.compile(r"^\s*\S+ [a-z]+ after \d+ steps"))
    return str(status(lab).inner_text()).split()[1]


def test_clicking_the_diagram_injects_faults(lab_page: Any, artifacts: Path) -> None:
    """A click on a message in flight drops it (lesson 02: a PREPARE lost on its way
    aborts the transfer); Enter on a node's header crashes it (the coordinator after
    the votes: the run blocks). Both have accessible names and pass axe-core."""
    page = lab_page
    lab = the_lab(page, "02")
    at_top(page, lab)
    assert outcome(lab) == "committed"
    go_to(lab, 1)
    at_top(page, lab)
    marks = lab.locator("svg.txst g.msg.inflight[data-click]")
    expect(marks).to_have_count(2)
    names = marks.evaluate_all("gs => gs.map(g => [g.getAttribute('role'), "
                               "g.getAttribute('tabindex'), g.getAttribute('aria-label')])")
    assert all(role == "button" and tab == "0" and name.startswith("message ")
               for role, tab, name in names), names
    expect(lab.locator(".txlab-clickhint")).to_contain_text("Click a message in flight")
    to_a = lab.locator('svg.txst g.msg.inflight[data-click][data-dst="AccountA"]')
    # Its dot (where it is now), through the transparent disc laid over the picture.
    lab.locator(f'svg.txst .hit-dot[data-msg="{to_a.get_attribute("data-msg")}"]').click()
    menu = lab.locator(".txlab-pick")
    expect(menu).to_be_visible()
    expect(menu).to_contain_text("PREPARE coordinator → AccountA")
    page.screenshot(path=artifacts / "lab-02-click-menu-1366x768.png")
    violations = axe_violations(page, ".jp-NotebookPanel:not(.lm-mod-hidden) .txlab")
    assert violations == [], json.dumps(violations, indent=1)
    menu.get_by_role("button", name="drop it", exact=True).click()
    expect(message_line(lab)).to_have_text(
        re.compile(r"^\s*added: drop 1x PREPARE from coordinator to AccountA after step 0"))
    expect(menu).to_have_count(0)
    assert outcome(lab) == "aborted"
    lab.get_by_role("tab", name="inject faults", exact=True).click()
    # The presets menu names the preset the lab started from, not its first entry.
    presets = lab.get_by_role("combobox", name="preset")
    expect(presets).to_have_value("seed-transfer")
    presets.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "lab-02-faults-1366x768.png")
    lab.get_by_role("button", name="undo last fault", exact=True).click()
    expect(message_line(lab)).to_have_text(re.compile(r"^\s*removed: drop"))

    # The keyboard: Tab reaches a node's header, Enter opens its menu.
    go_to(lab, 3)
    head = lab.locator('svg.txst g.head[data-click][data-node="coordinator"]')
    expect(head).to_have_attribute("aria-label", "coordinator: crash it right after step 3")
    head.focus()
    page.keyboard.press("Enter")
    crash = menu.get_by_role("button", name="crash it after step 3", exact=True)
    expect(crash).to_be_focused()
    page.keyboard.press("Enter")
    expect(message_line(lab)).to_have_text(re.compile(r"^\s*added: crash coordinator after "
                                                      r"step 3"))
    assert outcome(lab) == "blocked"
    go_to(lab, 4)
    expect(lab.locator('svg.txst g.head[data-click="recover"][data-node="coordinator"]')
           ).to_have_count(1)
    lab.get_by_role("button", name="reset", exact=True).click()
    expect(message_line(lab)).to_have_text(re.compile(r"^\s*reset"))


def test_can_it_get_worse_on_a_broken_run_says_so_in_view(lab_page: Any,
                                                         artifacts: Path) -> None:
    """Lesson 05's lab opens on a run that breaks atomicity: 'can it get worse?' says the
    run is as bad as it gets (it once said no added fault blocks or breaks a rule), and
    the message fits the lab at 1366x768, wrapped, not clipped."""
    page = lab_page
    lab = the_lab(page, "05")
    lab.get_by_role("tab", name="inject faults", exact=True).click()
    lab.get_by_role("button", name="can it get worse?", exact=True).click()
    said = lab.locator(".widget-html-content").filter(
        has_text=re.compile(r"this run already breaks atomicity at step \d+: nothing is worse"))
    expect(said).to_have_count(1)
    said.scroll_into_view_if_needed()
    message, whole = box(said), box(lab)
    assert message["x"] >= whole["x"] - 0.5
    assert message["x"] + message["width"] <= whole["x"] + whole["width"] + 0.5
    assert inside(message, LAPTOP), "the message is out of view"
    assert said.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the message is clipped"
    page.screenshot(path=artifacts / "lab-05-worse-1366x768.png")

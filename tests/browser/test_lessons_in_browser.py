"""Every lesson, opened in a real browser, runs clean and its lab works: in JupyterLab
(target ``jupyterlab``) and in the course's JupyterLite site, where the kernel is Pyodide
in the browser (target ``jupyterlite``).

For each notebook in notebooks/ (found by glob, so new lessons are tested as they come):
open it, clear its outputs and run all cells from the menus as a learner would, wait
until every cell has run and the kernel is idle, then check that

- no cell shows an error (a traceback or anything on stderr);
- every widget is rendered (no "Loading widget...", no "model not found"), and each
  cell that calls ``txlib.lab(`` or ``txlib.compare(`` shows one;
- in the lesson's main lab (the last ``txlib.lab`` of the notebook): ``▶`` moves the
  highlighted step of the space-time diagram and the states of the state machines,
  ``◀`` restores them, a crash injected from the fault panel changes the outcome, and
  the scenario JSON box round-trips the changed scenario through ``reset``; a click
  on a message in flight in the diagram drops it, and a click on the coordinator's
  header crashes it with the same outcome as the panel's crash (the anywidget front
  end, in JupyterLab and in the site);
- no request of the page (or of its web workers) went anywhere but 127.0.0.1.

After "Run All", every output (but those of ``# NBVAL_IGNORE_OUTPUT`` cells) must be
the committed one, compared as nbval compares them, read from JupyterLab's notebook
model: on CPython that repeats nbval, in the site it checks that Pyodide's Python (a
newer one) prints the same.

In the site, a lesson that needs real processes (lesson 12) is not run: it must open
with its "run this lesson on your computer" note first. All lessons take 6 to 7 minutes
there on two busy cores (the kernel starts in each page), so by default the site runs a
representative set (``LITE_DEFAULT``, about half of that); ``TXLIB_LITE_LESSONS=all``
runs every lesson there. The time until the kernel is ready and the time of "Run All"
are printed per lesson at the end of the run (and written to
``tests/browser/artifacts/timings.json``).

A screenshot of each main lab after a few steps (three, or more until the state
machines have changed) is saved to
``tests/browser/artifacts/<target>-<notebook>.png``. Every wait is on a condition in the page
(Playwright's auto-waiting ``expect`` or ``wait_for_function``), never a sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import nbformat
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # then the `browser` fixture skips (or, under CI, fails) with the reason
    expect = None

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.browser

PATHS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@dataclass(frozen=True)
class Target:
    """Where a lesson is opened: the server fixture, the page of a notebook, the kernel."""

    name: str
    server: str  # the session fixture serving the notebooks
    page: str  # the path of a notebook's page, {name} being the notebook's file name
    kernel: str  # the kernel's name in the notebook's toolbar


JUPYTERLAB = Target("jupyterlab", "lab_server", "/lab/tree/{name}?reset", "Python 3 (ipykernel)")
JUPYTERLITE = Target("jupyterlite", "lite_site", "/lab/index.html?path={name}",
                     "Python (Pyodide)")
# The lessons the site runs by default: the first (how the course works), 2PC, Paxos
# Commit, sagas, model checking (the heaviest computing) and the one that only says to
# run it locally.
LITE_DEFAULT = ("00_", "02_", "06_", "07_", "11_", "12_")


def lite_selected(path: Path) -> bool:
    chosen = os.environ.get("TXLIB_LITE_LESSONS", "").strip().lower()
    return chosen == "all" or path.name.startswith(LITE_DEFAULT)


CASES = [pytest.param(JUPYTERLAB, p, id=f"jupyterlab-{p.name}") for p in PATHS] + [
    pytest.param(JUPYTERLITE, p, id=f"jupyterlite-{p.name}") for p in PATHS
    if lite_selected(p)]
VIEWPORT = {"width": 1600, "height": 1000}
RUN_ALL_TIMEOUT = 120_000  # ms for all cells of one lesson to run (they take seconds)
KERNEL_TIMEOUT = 60_000  # ms for the kernel to start
ACTION_TIMEOUT = 15_000  # ms for the lab to answer one click
if expect is not None:
    expect.set_options(timeout=ACTION_TIMEOUT)
MIN_STEPS = 3  # steps taken before the screenshot, at least
MAX_STEPS = 15  # within which a step must change what the state machines show
WIDGET_CALLS = ("txlib.lab(", "txlib.compare(")
STDERR = '[data-mime-type="application/vnd.jupyter.stderr"]'
OUTCOME = re.compile(r"^\s*\S+\s+[a-z][a-z -]* after \d+ steps")  # "✓ committed after 9 steps"

# True when every code cell of the notebook shows an execution count, or when one shows
# an error and none is still running (JupyterLab stops "Run All" at an error).
ALL_RUN_JS = """() => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  if (!nb) return false;
  const prompts = [...nb.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
    .map(p => p.textContent.trim());
  if (prompts.some(p => p === '[*]:')) return false;
  if (nb.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
    return true;
  return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p));
}"""
ALL_CLEARED_JS = """() => {
  const prompts = [...document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
  return prompts.length > 0 && prompts.every(p => p.textContent.trim() === '[ ]:');
}"""


def calls(source: str, names: tuple[str, ...]) -> bool:
    """True if the code (comments aside) calls one of ``names``."""
    code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
    return any(name in code for name in names)


def menu(page: Page, top: str, item: str) -> None:
    """Choose ``top > item`` from JupyterLab's menu bar."""
    page.get_by_role("menuitem", name=top, exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


# --- reading the lab -----------------------------------------------------------------
def status(lab: Locator) -> Locator:
    """The outcome line: "step N of M: run in progress" or the outcome at the end."""
    return lab.locator(".widget-html-content").filter(
        has_text=re.compile(rf"^\s*step \d+ of \d+|{OUTCOME.pattern}"))


def message(lab: Locator) -> Locator:
    """The lab's message line (last child of its box): notes and errors of an action."""
    return lab.locator(":scope > .widget-vbox > .widget-html").last


def now_label(lab: Locator) -> Locator:
    return lab.locator("svg.txst g.now text")


def current_steps(lab: Locator) -> list[list[str | None]]:
    """``[data-step, data-end-step]`` of each element the space-time diagram highlights
    as current (a message is current by its send or by its delivery)."""
    return lab.locator("svg.txst .current").evaluate_all(
        "els => els.map(e => [e.getAttribute('data-step'), e.getAttribute('data-end-step')])")


def machine_states(lab: Locator) -> list[list[str | None]]:
    """What the state machines show: each occupied state with the nodes in it, and the
    transition highlighted as just taken (if any)."""
    return lab.locator("g.state.occupied, g.transition.last").evaluate_all(
        "els => els.map(e => e.matches('.state') ? "
        "['in', e.getAttribute('data-state'), e.getAttribute('data-nodes')] : "
        "['took', e.getAttribute('data-source'), e.getAttribute('data-target')])")


def button(lab: Locator, label: str) -> Locator:
    return lab.get_by_role("button", name=label, exact=True)


def expect_at_step(lab: Locator, step: int) -> None:
    """Wait until the lab shows ``step`` (the status is the last thing it redraws)."""
    expect(status(lab)).to_have_text(re.compile(rf"^\s*step {step} of \d+"),
                                      timeout=ACTION_TIMEOUT)
    if step > 0:
        expect(now_label(lab)).to_have_text(f"step {step}")
    expect(message(lab)).not_to_contain_text("⚠")


def outcome_at_end(lab: Locator) -> str:
    button(lab, "⏭").click()
    expect(status(lab)).to_have_text(OUTCOME, timeout=ACTION_TIMEOUT)
    return status(lab).inner_text()


def open_tab(lab: Locator, title: str) -> None:
    tab = lab.get_by_role("tab", name=title, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


# The notebook's outputs as JupyterLab holds them (the page exposes the app: the lab
# server's expose_app_in_browser, the site's lite/jupyter-lite.json).
OUTPUTS_JS = """() => window.jupyterapp.shell.currentWidget.content.model.toJSON()
  .cells.map(c => c.outputs || null)"""
# What is compared, as nbval does: stream text and these representations.
COMPARED = ("text/plain", "text/html", "text/markdown", "image/svg+xml", "application/json")
SANITIZE = Path(__file__).resolve().parents[1] / "nbval_sanitize.cfg"


def sanitizers() -> list[tuple[re.Pattern[str], str]]:
    """nbval's sanitizing patterns (tests/nbval_sanitize.cfg), to compare as nbval does."""
    lines = [line.split(":", 1)[1].strip() for line in SANITIZE.read_text().splitlines()
             if line.startswith(("regex:", "replace:"))]
    return [(re.compile(regex), replace) for regex, replace in zip(lines[::2], lines[1::2],
                                                                   strict=True)]


def comparable(outputs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(kind, text) of each compared part of a cell's outputs, sanitized."""
    def text(value: Any) -> str:
        value = "".join(value) if isinstance(value, list) else value
        value = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        for pattern, replacement in sanitizers():
            value = pattern.sub(replacement, value)
        return value

    parts: list[tuple[str, str]] = []
    for out in outputs:
        if out["output_type"] == "stream":
            parts.append((out["name"], text(out["text"])))
        elif out["output_type"] == "error":
            parts.append(("error", f"{out['ename']}: {out['evalue']}"))
        else:
            parts += [(kind, text(out["data"][kind])) for kind in COMPARED
                      if kind in out.get("data", {})]
    # Consecutive chunks of one stream are one text (the kernel may flush them apart).
    merged: list[tuple[str, str]] = []
    for kind, value in parts:
        if merged and kind in {"stdout", "stderr"} and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + value)
        else:
            merged.append((kind, value))
    return merged


def changed_outputs(nb: Any, now: list[list[dict[str, Any]] | None]) -> list[str]:
    """The cells (not marked NBVAL_IGNORE_OUTPUT) whose outputs differ from ``nb``'s."""
    changed: list[str] = []
    for index, (cell, outputs) in enumerate(zip(nb.cells, now, strict=True)):
        if cell.cell_type != "code" or cell.source.startswith("# NBVAL_IGNORE_OUTPUT"):
            continue
        before, after = comparable(cell.outputs), comparable(outputs or [])
        if before != after:
            changed.append(f"cell {index}: committed {before!r:.400}\n  now {after!r:.400}")
    return changed


def local_only(nb: Any) -> bool:
    """True for a lesson the site only shows: it opens with the "run it locally" note."""
    return bool(nb.cells) and "local-only" in nb.cells[0].metadata.get("tags", [])


def outside_requests(requests: list[str]) -> list[str]:
    """The requests that went anywhere but 127.0.0.1 (data: and blob: stay in the page)."""
    return [url for url in requests if urlsplit(url).scheme not in {"data", "blob"}
            and urlsplit(url).hostname != "127.0.0.1"]


# --- the test --------------------------------------------------------------------------
@pytest.mark.parametrize(("target", "path"), CASES)
def test_lesson_runs_and_its_lab_works(
    target: Target, path: Path, request: pytest.FixtureRequest, browser: Any,
    artifacts: Path, timings: Any
) -> None:
    server = request.getfixturevalue(target.server)
    name = path.name
    key = f"{target.name}/{name}"
    served = server.notebooks / name
    assert served.exists(), f"{name} was not in notebooks/ when the server started"
    nb = nbformat.read(served, as_version=4)
    context = browser.new_context(viewport=VIEWPORT)
    requests: list[str] = []
    context.on("request", lambda req: requests.append(req.url))  # also the web workers'
    page = context.new_page()
    page.set_default_timeout(ACTION_TIMEOUT)
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        started = time.monotonic()
        page.goto(server.url + target.page.format(name=name))
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        cells = panel.locator(".jp-Notebook .jp-Cell")
        expect(cells).to_have_count(len(nb.cells), timeout=KERNEL_TIMEOUT)
        if local_only(nb):  # the site shows it with its outputs, and says why not to run it
            expect(cells.first).to_contain_text("Run this lesson on your computer")
            expect(panel.locator(".jp-OutputArea-output").first).to_be_attached()
            assert not outside_requests(requests), outside_requests(requests)
            return
        expect(panel.locator(".jp-Toolbar-kernelName")).to_have_text(
            target.kernel, timeout=KERNEL_TIMEOUT)
        expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
            "data-status", "idle", timeout=KERNEL_TIMEOUT)
        timings.record(key, "kernel ready", time.monotonic() - started)

        # Run everything from a clean slate, as a learner would.
        menu(page, "Edit", "Clear Outputs of All Cells")
        page.wait_for_function(ALL_CLEARED_JS)
        run_started = time.monotonic()
        menu(page, "Run", "Run All Cells")
        page.wait_for_function(ALL_RUN_JS, timeout=RUN_ALL_TIMEOUT)
        errors = panel.locator(f".jp-OutputArea-output{STDERR}")
        assert errors.count() == 0, f"{name}: error output in a cell:\n" + "\n---\n".join(
            t[:2000] for t in errors.all_text_contents())
        expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
            "data-status", "idle", timeout=RUN_ALL_TIMEOUT)
        prompts = panel.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        assert [p.strip() for p in prompts] == [f"[{i}]:" for i in
                                                range(1, len(code_cells) + 1)], (
            f"{name}: not every cell ran once, in order, in a fresh kernel: {prompts}")
        timings.record(key, "run all", time.monotonic() - run_started)
        # ... to the committed outputs (as nbval checks them on CPython: the site's
        # Python is Pyodide's, a newer one, and must print the same).
        compared = [c for c in nb.cells if c.cell_type == "code" and c.outputs
                    and not c.source.startswith("# NBVAL_IGNORE_OUTPUT")]
        assert compared, f"{name}: no committed output to compare with"
        timings.record(key, "cells compared", len(compared))
        changed = changed_outputs(nb, page.evaluate(OUTPUTS_JS))
        assert not changed, f"{name}: outputs differ from the committed ones:\n" + "\n".join(
            changed)

        # Every widget rendered; each lab/compare cell shows one.
        for broken in ("Loading widget...", "Error displaying widget"):
            expect(panel.get_by_text(broken), f"{name}: a widget shows {broken!r}"
                   ).to_have_count(0)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and calls(cell.source, WIDGET_CALLS):
                view = cells.nth(index).locator(".jp-OutputArea-output .jupyter-widgets")
                expect(view.first, f"{name}: cell {index} shows no widget").to_be_attached()
        # (A CSS locator: it also finds the button while its tab is hidden.)
        labs = panel.locator(".jp-OutputArea-output").filter(
            has=page.locator("button.widget-button", has_text="inject at this step"))
        assert labs.count() >= 1, f"{name}: no txlib.lab widget in the lesson"
        lab = labs.last
        lab.scroll_into_view_if_needed()
        expect(status(lab)).to_have_text(re.compile(r"^\s*step 0 of \d+"))

        # The outcome as planned; then back to the start.
        planned = outcome_at_end(lab)
        timings.record(key, "lab interactive", time.monotonic() - started)
        button(lab, "⏮").click()
        expect_at_step(lab, 0)

        # Step forward: each click moves the highlighted step. Take MIN_STEPS steps, more
        # if none of them changed what the state machines show (not every step does).
        seen: list[tuple[list[list[str | None]], list[list[str | None]]]] = [
            ([], machine_states(lab))]
        changed: list[int] = []  # the steps whose click changed the state machines
        step = 0
        while step < MIN_STEPS or not changed:
            assert step < MAX_STEPS, (
                f"{name}: {MAX_STEPS} clicks on ▶ never changed the state machines")
            button(lab, "▶").click()
            step += 1
            expect_at_step(lab, step)
            highlighted = current_steps(lab)
            assert highlighted and all(str(step) in h for h in highlighted), (
                f"{name}: at step {step} the diagram highlights (step, end step) {highlighted}")
            assert highlighted != seen[-1][0]
            seen.append((highlighted, machine_states(lab)))
            if seen[-1][1] != seen[-2][1]:
                changed.append(step)
        timings.record(key, "steps taken", step)
        page.set_viewport_size({"width": VIEWPORT["width"],
                                "height": min(4000, int(lab.bounding_box()["height"]) + 200)})
        lab.scroll_into_view_if_needed()
        lab.screenshot(path=artifacts / f"{target.name}-{path.stem}.png")
        page.set_viewport_size(VIEWPORT)

        # Step back to before the last change of the state machines: each click restores
        # exactly the frame seen going forward, highlighted step and states.
        while step >= changed[-1]:
            button(lab, "◀").click()
            step -= 1
            expect_at_step(lab, step)
            assert (current_steps(lab), machine_states(lab)) == seen[step], (
                f"{name}: ◀ did not restore step {step}")

        # A crash of the coordinator (the node list's first) injected from the fault
        # panel at this step changes the outcome.
        open_tab(lab, "inject faults")
        lab.get_by_label("fault", exact=True).select_option("crash a node now")
        nodes = lab.get_by_label("node", exact=True)
        coordinator = nodes.locator("option").first.get_attribute("value")
        nodes.select_option(coordinator)
        button(lab, "inject at this step").click()
        expect(message(lab)).to_have_text(
            re.compile(rf"^added: crash {re.escape(coordinator)} after step {step}\b"))
        crashed = outcome_at_end(lab)
        assert crashed != planned, (
            f"{name}: crashing {coordinator} after step {step} left the outcome at {planned!r}")

        # The JSON box round-trips the changed scenario, through a reset.
        open_tab(lab, "scenario JSON")
        box = lab.locator("textarea")
        shared = box.input_value()
        faults = json.loads(shared).get("faults", [])
        assert any("crash" in json.dumps(f) and coordinator in json.dumps(f)
                   for f in faults), f"{name}: the JSON misses the injected crash: {shared}"
        open_tab(lab, "inject faults")
        button(lab, "reset").click()
        expect(message(lab)).to_have_text("reset", timeout=ACTION_TIMEOUT)
        open_tab(lab, "scenario JSON")
        expect(box).not_to_have_value(shared)
        box.fill(shared)
        button(lab, "load JSON").click()
        expect(message(lab)).to_have_text("loaded the scenario from JSON",
                                          timeout=ACTION_TIMEOUT)
        expect(box).to_have_value(shared)
        reloaded = outcome_at_end(lab)
        plan = lab.locator(".widget-html-content").filter(
            has_text=re.compile(r"^\s*(fault plan|no faults)")).text_content()
        assert reloaded == crashed, (
            f"{name}: the scenario loaded from JSON ran to {reloaded!r}, not {crashed!r}; "
            f"the lab's fault plan: {plan!r}")

        # The picture itself (the anywidget front end): a click on a message in flight
        # drops it, a click on a node's header crashes it -- as the panel's crash did.
        open_tab(lab, "inject faults")
        button(lab, "reset").click()  # to the scenario loaded from JSON: without its crash
        expect(message(lab)).to_have_text("reset", timeout=ACTION_TIMEOUT)
        button(lab, "undo last fault").click()
        expect(message(lab)).to_have_text(re.compile(rf"^removed: crash {re.escape(coordinator)}"))
        expect(lab.locator(".txlab-clickhint")).to_contain_text("Click a message in flight")
        flying = lab.locator("svg.txst g.msg.inflight[data-click]")
        at = 0
        while flying.count() == 0:
            assert at < MAX_STEPS, f"{name}: no message in flight in {MAX_STEPS} steps"
            button(lab, "▶").click()
            at += 1
            expect_at_step(lab, at)
        target = flying.first.get_attribute("data-msg")
        kind = flying.first.get_attribute("data-type")
        lab.locator(f'svg.txst .hit-dot[data-msg="{target}"]').click()
        lab.locator(".txlab-pick").get_by_role("button", name="drop it").click()
        expect(message(lab)).to_have_text(re.compile(rf"^added: drop 1x {re.escape(kind)} "))
        expect(lab.locator(f'svg.txst g.msg.dropped[data-msg="{target}"]')).to_have_count(1)
        button(lab, "undo last fault").click()
        expect(message(lab)).to_have_text(re.compile(r"^removed: drop"))
        lab.get_by_label("step", exact=True).fill(str(step))
        lab.get_by_label("step", exact=True).press("Enter")
        expect_at_step(lab, step)
        lab.locator(f'svg.txst g.head[data-click][data-node="{coordinator}"]').click()
        lab.locator(".txlab-pick").get_by_role("button", name=f"crash it after step {step}"
                                                ).click()
        expect(message(lab)).to_have_text(
            re.compile(rf"^added: crash {re.escape(coordinator)} after step {step}\b"))
        clicked = outcome_at_end(lab)
        assert clicked == crashed, (
            f"{name}: a crash clicked on the diagram ran to {clicked!r}, the panel's to "
            f"{crashed!r}")

        expect(message(lab)).not_to_contain_text("⚠")
        assert not page_errors, f"{name}: JavaScript errors in the page: {page_errors}"
        assert not outside_requests(requests), (
            f"{name}: requests left 127.0.0.1: {outside_requests(requests)[:10]}")
        timings.record(key, "total", time.monotonic() - started)
    except BaseException:
        # What the page looked like, for the CI log's reader; then the real failure.
        with contextlib.suppress(Exception):
            page.set_viewport_size(VIEWPORT)
            page.screenshot(path=artifacts / f"{target.name}-{path.stem}-failure.png")
        raise
    finally:
        context.close()
        server.shut_down_kernels()

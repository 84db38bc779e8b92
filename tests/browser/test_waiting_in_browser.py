"""What a learner sees while waiting for a search, in JupyterLab and in the course's
JupyterLite site (Pyodide, where searches are slowest and rich alone would show nothing).
Each test adds a cell at the end of lesson 00 and runs it, as a learner would.

- The explorer: a search that lasts four seconds on any machine (stopped by
  ``max_seconds``) shows a bar under its cell that counts states; once the cell has
  run, the bar is gone from the page, and the cell's outputs in JupyterLab's notebook
  model hold the printed line and nothing else that shows (no ``HTML(value='')`` to be
  saved). Screenshot: ``tests/browser/artifacts/<target>-search-progress.png``.
- The lab's "can it get worse?" on the slowest preset (seconds, more in the browser):
  while it searches, its button is off and the lab's message counts the runs tried;
  then the answer replaces it. Screenshot: ``<target>-worse-progress.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from test_lessons_in_browser import (
    ACTION_TIMEOUT,
    JUPYTERLAB,
    JUPYTERLITE,
    KERNEL_TIMEOUT,
    OUTPUTS_JS,
    RUN_ALL_TIMEOUT,
    Target,
    button,
    message,
    open_tab,
)

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

try:
    from playwright.sync_api import expect
except ImportError:  # then the `browser` fixture skips (or, under CI, fails) with the reason
    expect = None

pytestmark = pytest.mark.browser

LESSON = "00_start_here.ipynb"
SECONDS = 4  # the search's own budget: long enough for the bar on the fastest machine
CODE = ("import txlib\n"
        "found = txlib.explore('3pc', participants=3, max_crashes=2, recoveries=True,\n"
        f"                      partitions=True, max_seconds={SECONDS})\n"
        "print('stopped by', found.stopped_by)")
# Add a cell after the last one, holding ``code``, and run it (as a learner would).
ADD_AND_RUN_JS = """async code => {
  const app = window.jupyterapp;
  const notebook = app.shell.currentWidget.content;
  notebook.activeCellIndex = notebook.widgets.length - 1;
  await app.commands.execute('notebook:insert-cell-below');
  notebook.activeCell.model.sharedModel.setSource(code);
  app.commands.execute('notebook:run-cell');
}"""


SLOWEST_PRESET = "paxos-commit-f2-three-down"  # see benchmarks/worse.py


@dataclass(frozen=True)
class LessonPage:
    """A browser page of one target, and the server behind it."""

    page: Page
    server: Any
    target: Target

    def run_added_cell(self, code: str) -> Locator:
        """Open lesson 00, wait for its kernel, add a cell holding ``code`` at the end
        and run it; the new cell."""
        page, target = self.page, self.target
        page.goto(self.server.url + target.page.format(name=LESSON))
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        expect(panel.locator(".jp-Toolbar-kernelName")).to_have_text(
            target.kernel, timeout=KERNEL_TIMEOUT)
        expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
            "data-status", "idle", timeout=KERNEL_TIMEOUT)
        page.evaluate(ADD_AND_RUN_JS, code)
        return panel.locator(".jp-Notebook .jp-Cell").last


@pytest.fixture(params=[JUPYTERLAB, JUPYTERLITE], ids=lambda t: t.name)
def lesson_page(request: pytest.FixtureRequest, browser: Any) -> Iterator[LessonPage]:
    """A page at 1366x768 in each target, its kernels ended afterwards."""
    target: Target = request.param
    server = request.getfixturevalue(target.server)
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(ACTION_TIMEOUT)
    try:
        yield LessonPage(page, server, target)
    finally:
        context.close()
        server.shut_down_kernels()


def test_a_long_search_shows_a_bar_while_it_runs_and_leaves_no_output(
    lesson_page: LessonPage, artifacts: Any
) -> None:
    page, name = lesson_page.page, lesson_page.target.name
    added = lesson_page.run_added_cell(CODE)
    bar = added.locator(".jp-OutputArea-output").filter(has_text="frontier")
    expect(bar).to_contain_text("states", timeout=KERNEL_TIMEOUT)
    added.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / f"{name}-search-progress.png"))
    expect(added).to_contain_text(f"stopped by max_seconds={SECONDS}", timeout=KERNEL_TIMEOUT)
    expect(bar).to_have_count(0)
    outputs = page.evaluate(OUTPUTS_JS)[-1]
    shown = [o for o in outputs if o["output_type"] != "display_data" or o["data"]]
    assert shown == [{"output_type": "stream", "name": "stdout",
                      "text": f"stopped by max_seconds={SECONDS}\n"}], outputs


def test_can_it_get_worse_counts_its_runs_while_it_searches(
    lesson_page: LessonPage, artifacts: Any
) -> None:
    page, name = lesson_page.page, lesson_page.target.name
    added = lesson_page.run_added_cell(f"import txlib\ntxlib.lab({SLOWEST_PRESET!r})")
    lab = added.locator(".jp-OutputArea-output").filter(
        has=page.locator("button.widget-button", has_text="can it get worse?"))
    expect(lab).to_have_count(1, timeout=KERNEL_TIMEOUT)
    lab.scroll_into_view_if_needed()
    open_tab(lab, "inject faults")
    worse = button(lab, "can it get worse?")
    worse.click()
    expect(message(lab)).to_contain_text("tried so far", timeout=KERNEL_TIMEOUT)
    expect(worse).to_be_disabled()
    page.screenshot(path=str(artifacts / f"{name}-worse-progress.png"))
    expect(message(lab)).to_contain_text("worse, with", timeout=RUN_ALL_TIMEOUT)
    expect(worse).to_be_enabled()

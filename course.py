#!/usr/bin/env python3
"""Set up the txlib course and run it, using nothing but Python 3.10+ and pip.

    python3 course.py lab [ARGS...]       set up, then open the course in JupyterLab
    python3 course.py test [ARGS...]      set up, then run ruff, mypy and the whole test suite
    python3 course.py notebooks [NB...]   set up, then execute the notebooks in place
    python3 course.py lite [--serve]      set up, then build the course as a JupyterLite site
                                          (it runs in a browser tab; --serve serves it)
    python3 course.py links               the Binder and GitHub Pages addresses of origin
    python3 course.py setup               only set up (.venv with txlib and its dependencies)
    python3 course.py clean               remove .venv, build output and tool caches

Setup creates a virtual environment in ``.venv`` next to this file and runs
``pip install -e ".[test]"`` in it. The install is skipped while
``.venv/.txlib-installed`` holds the SHA-256 of the current ``pyproject.toml``.
Extra arguments after ``lab`` go to ``jupyter lab``; after ``test``, to pytest; after
``notebooks``, to ``scripts/execute_notebooks.py`` (which notebooks; default: all);
after ``lite``, to ``scripts/build_lite.py`` (``--serve``, ``--port N``, ``--force``),
which prints the site's folder (``build/lite``) on its last line. This script uses only
the standard library.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".txlib-installed"
PYPROJECT = ROOT / "pyproject.toml"
COMMANDS = ("lab", "test", "notebooks", "lite", "links", "setup", "clean")
FIRST_LESSON = "00_start_here.ipynb"
# origin's forms for a GitHub repository: https://github.com/O/R(.git),
# git@github.com:O/R(.git), ssh://git@github.com/O/R(.git)
GITHUB_REMOTE = re.compile(
    r"^(?:https?://(?:[^@/]+@)?github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"(?P<owner>[A-Za-z0-9-]+)/(?P<repo>[A-Za-z0-9._-]+?)(?:\.git)?/?$")
PYTEST_NO_TESTS_COLLECTED = 5


class SetupError(Exception):
    """Setup cannot go on; the message says what the user should do."""


def venv_bin(name: str) -> Path:
    """Return the path of executable ``name`` inside ``.venv`` (POSIX or Windows layout)."""
    if os.name == "nt":
        return VENV / "Scripts" / f"{name}.exe"
    return VENV / "bin" / name


def show(cmd: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Print ``cmd`` the way a user would type it from the repo root, and return it as strings."""
    args = [os.fspath(part) for part in cmd]
    shown = [os.path.relpath(arg, ROOT) if arg.startswith(str(VENV)) else arg for arg in args]
    print("$ " + shlex.join(shown), flush=True)
    return args


def run(cmd: Sequence[str | os.PathLike[str]], *, quiet: bool = False) -> int:
    """Print and run ``cmd`` in the repo root; return its exit code.

    With ``quiet``, neither the command nor its output is shown (used for probes).
    """
    args = [os.fspath(part) for part in cmd] if quiet else show(cmd)
    output = subprocess.DEVNULL if quiet else None
    try:
        return subprocess.run(args, cwd=ROOT, stdout=output, stderr=output, check=False).returncode
    except OSError as exc:  # e.g. the executable is missing
        print(f"course.py: cannot run {args[0]}: {exc}", file=sys.stderr)
        return 127


def pyproject_hash() -> str:
    """Return the SHA-256 hex digest of ``pyproject.toml``."""
    return hashlib.sha256(PYPROJECT.read_bytes()).hexdigest()


def venv_works() -> bool:
    """Tell whether ``.venv`` has a Python that can run pip."""
    python = venv_bin("python")
    return python.exists() and run([python, "-m", "pip", "--version"], quiet=True) == 0


def create_venv() -> None:
    """Create ``.venv``; fall back to virtualenv when the venv module or ensurepip is missing."""
    print(f"course.py: creating a virtual environment in {VENV.name}/", flush=True)
    if run([sys.executable, "-m", "venv", VENV]) == 0 and venv_works():
        return
    shutil.rmtree(VENV, ignore_errors=True)  # a venv without pip is of no use

    print("course.py: the venv module did not work; trying virtualenv instead", flush=True)
    have_virtualenv = importlib.util.find_spec("virtualenv") is not None
    if not have_virtualenv:
        pip_install = [sys.executable, "-m", "pip", "install", "--user", "virtualenv"]
        have_virtualenv = run(pip_install) == 0
    if have_virtualenv and run([sys.executable, "-m", "virtualenv", VENV]) == 0 and venv_works():
        return
    shutil.rmtree(VENV, ignore_errors=True)

    raise SetupError(
        f"could not create a virtual environment with {sys.executable}. Install Python's venv "
        "module (Debian/Ubuntu: `sudo apt install python3-venv`) or virtualenv "
        "(`pip install virtualenv`), then run this command again."
    )


def setup() -> None:
    """Make sure ``.venv`` exists and has this project installed with its test extra."""
    if sys.version_info < (3, 10):  # noqa: UP036 - course.py runs under whatever python3 is
        version = sys.version.split()[0]
        raise SetupError(f"txlib needs Python 3.10 or newer; {sys.executable} is {version}.")
    wanted = pyproject_hash()
    if venv_bin("python").exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        print("course.py: .venv is up to date with pyproject.toml; skipping install", flush=True)
        return

    if not venv_works():
        shutil.rmtree(VENV, ignore_errors=True)
        create_venv()
    STAMP.unlink(missing_ok=True)
    if run([venv_bin("python"), "-m", "pip", "install", "-e", ".[test]"]) != 0:
        raise SetupError("installing the project into .venv failed; see pip's output above.")
    STAMP.write_text(wanted + "\n")
    print("course.py: setup done", flush=True)


def lab(extra: Sequence[str]) -> int:
    """Set up, then replace this process with ``jupyter lab notebooks/``."""
    setup()
    cmd = [os.fspath(venv_bin("jupyter")), "lab", "notebooks/"]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        cmd.append("--allow-root")  # Jupyter refuses to start as root without it (containers)
    cmd += extra
    if os.name == "nt":  # os.exec* on Windows does not replace the process; just wait for it
        return run(cmd)
    show(cmd)
    os.chdir(ROOT)
    os.execv(cmd[0], cmd)


def test(extra: Sequence[str]) -> int:
    """Set up, then run ``ruff check .``, ``mypy`` (over txlib, see pyproject.toml) and
    pytest, each even if an earlier one failed.

    Returns non-zero if any fails; pytest collecting no tests counts as a failure.
    """
    setup()
    ruff_code = run([venv_bin("ruff"), "check", "."])
    mypy_code = run([venv_bin("mypy")])
    pytest_code = run([venv_bin("python"), "-m", "pytest", *extra])
    if ruff_code != 0:
        print(f"course.py: FAILED: ruff check found problems (exit code {ruff_code})",
              file=sys.stderr)
    if mypy_code != 0:
        print(f"course.py: FAILED: mypy found type errors (exit code {mypy_code})",
              file=sys.stderr)
    if pytest_code == PYTEST_NO_TESTS_COLLECTED:
        print("course.py: FAILED: pytest collected no tests (exit code 5)", file=sys.stderr)
    elif pytest_code != 0:
        print(f"course.py: FAILED: pytest exit code {pytest_code}", file=sys.stderr)
    return ruff_code or mypy_code or pytest_code


def notebooks(extra: Sequence[str]) -> int:
    """Set up, then execute the notebooks in place (all of them, or those named)."""
    setup()
    return run([venv_bin("python"), "scripts/execute_notebooks.py", *extra])


def lite(extra: Sequence[str]) -> int:
    """Set up, then build the JupyterLite site (and serve it, with ``--serve``)."""
    setup()
    return run([venv_bin("python"), "scripts/build_lite.py", *extra])


def github_links(remote: str) -> dict[str, str] | None:
    """The Binder and GitHub Pages addresses of a GitHub ``remote`` URL (else None)."""
    found = GITHUB_REMOTE.match(remote.strip())
    if found is None:
        return None
    owner, repo = found["owner"], found["repo"]
    pages = (f"https://{owner.lower()}.github.io/" if repo.lower() == f"{owner.lower()}.github.io"
             else f"https://{owner.lower()}.github.io/{repo}/")
    return {
        "repository": f"https://github.com/{owner}/{repo}",
        "binder": f"https://mybinder.org/v2/gh/{owner}/{repo}/HEAD"
                  f"?urlpath=lab/tree/notebooks/{FIRST_LESSON}",
        "pages": f"{pages}lab/index.html?path={FIRST_LESSON}",
    }


def links() -> int:
    """Print the Binder and GitHub Pages addresses of ``origin`` and the README badges."""
    try:
        done = subprocess.run(["git", "remote", "get-url", "origin"], cwd=ROOT,
                              capture_output=True, text=True, check=False)
    except OSError as exc:
        print(f"course.py: cannot run git ({exc}), so origin is unknown", file=sys.stderr)
        return 1
    remote = done.stdout.strip()
    if done.returncode != 0 or not remote:
        print("course.py: this checkout has no remote called origin, so there is no Binder "
              "or Pages address to give", file=sys.stderr)
        return 1
    found = github_links(remote)
    if found is None:
        print(f"course.py: origin is {remote}, not a GitHub repository: Binder and GitHub "
              "Pages addresses exist only for GitHub repositories", file=sys.stderr)
        return 1
    print(f"repository:         {found['repository']}")
    print(f"Launch on Binder:   {found['binder']}")
    print(f"Open in browser:    {found['pages']}")
    print("  (GitHub Pages serves the site once the workflow .github/workflows/pages.yml has "
          "run with Pages set to 'GitHub Actions')")
    print("README badges:")
    print(f"[![Open in your browser](https://img.shields.io/badge/open-in%20your%20browser-blue)]"
          f"({found['pages']})")
    print(f"[![Launch on Binder](https://mybinder.org/badge_logo.svg)]({found['binder']})")
    return 0


def clean() -> int:
    """Remove ``.venv``, build output, tool caches and ``__pycache__`` directories."""
    targets = [VENV, ROOT / "build", ROOT / "dist", *ROOT.glob("*.egg-info")]
    targets += [ROOT / name for name in (".pytest_cache", ".ruff_cache", ".hypothesis")]
    for dirpath, dirnames, _ in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in {".git", ".venv"}]
        targets += [Path(dirpath) / d for d in dirnames if d == "__pycache__"]
    for target in targets:
        if target.exists():
            print(f"course.py: removing {target.relative_to(ROOT)}", flush=True)
            shutil.rmtree(target)
    return 0


def main(argv: Sequence[str]) -> int:
    """Dispatch ``argv`` (without the program name) to a command; return the exit code."""
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, extra = argv[0], list(argv[1:])
    if command not in COMMANDS:
        print(f"course.py: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    if command in {"setup", "clean", "links"} and extra:
        print(f"course.py: {command} takes no arguments", file=sys.stderr)
        return 2
    try:
        if command == "lab":
            return lab(extra)
        if command == "test":
            return test(extra)
        if command == "notebooks":
            return notebooks(extra)
        if command == "lite":
            return lite(extra)
        if command == "links":
            return links()
        if command == "clean":
            return clean()
        setup()
        return 0
    except SetupError as exc:
        print(f"course.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Build the course as a JupyterLite site: JupyterLab and a Pyodide (WebAssembly CPython)
kernel that run entirely in the browser, from static files any web server can serve.

    python scripts/build_lite.py [--output DIR] [--force]

Run it with the Python of ``.venv`` (``python3 course.py lite`` does): it needs the
project's ``lite`` extra (jupyterlite-core, jupyterlite-pyodide-kernel; their versions are
pinned there, and the Pyodide version is the one that kernel pins), ``npm`` and ``pip``.
It fetches only from npm and PyPI, into ``build/lite-cache/``, never from a CDN: the site
loads nothing from outside itself at run time.

1. the Pyodide runtime: the npm package ``pyodide`` at the kernel's version;
2. the wheels the kernel and txlib need (``micropip``, ``ipython``, ``jedi``, ``comm``,
   ``ipywidgets``, ``rich``, ... and txlib's own, built from this checkout), pure-Python
   wheels from PyPI: at Pyodide's own versions where its lock file lists the package,
   else at the version installed here (so ipywidgets matches the site's widget
   extension); requirements are followed with browser markers (``sys_platform ==
   "emscripten"``);
3. a trimmed ``pyodide-lock.json`` listing exactly those wheels, with their real hashes,
   so ``import txlib`` in a notebook loads txlib and its dependencies (no install cell);
4. the lessons (``notebooks/*.ipynb``) with their outputs, set to the Pyodide kernel; a
   lesson that needs real processes (it imports ``txlib.real``) gets a first cell saying
   to run it locally;
5. ``jupyter lite build``, with the PyPI fallback of ``%pip install`` disabled.

The build is skipped while its inputs are unchanged (``--force`` rebuilds). The last line
printed is the site's folder.
"""

from __future__ import annotations

import argparse
import contextlib
import email.parser
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import nbformat
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "lite"  # jupyter-lite.json and overrides.json of the site
NOTEBOOKS = ROOT / "notebooks"
OUTPUT = ROOT / "build" / "lite"
CACHE = ROOT / "build" / "lite-cache"  # downloads, kept between builds
STAMP_NAME = ".txlib-lite-inputs"  # in the output: the hash of what it was built from

# What the kernel loads at start (its worker loads micropip and piplite, then ipykernel,
# comm, pyodide-kernel, jedi and ipython), plus txlib. lite/jupyter-lite.json preloads
# the kernel's in one batch (loadPyodideOptions.packages), so they must be in the lock.
KERNEL_PACKAGES = ("micropip", "piplite", "ipykernel", "comm", "pyodide-kernel", "jedi",
                   "ipython")
ROOTS = (*KERNEL_PACKAGES, "txlib")
KERNEL_SETTINGS = "@jupyterlite/pyodide-kernel-extension:kernel"
# Front-end parts of packages, never imported by the kernel: the site's JupyterLab has
# the widget extension built in, and the kernel package ships its own widgetsnbextension.
FRONT_END_ONLY = {"jupyterlab", "jupyterlab-widgets", "widgetsnbextension"}
# Packages whose JupyterLab extension (installed here, in sys.prefix) the site must carry:
# ``jupyter lite build`` copies every extension of this environment, and the check after
# the build makes sure these are there (anywidget: the lab's clickable diagram).
FRONT_ENDS = ("anywidget",)
# The Pyodide runtime files the site needs (the npm package also has TypeScript types,
# source maps and demo pages).
RUNTIME_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")
LOCAL_ONLY = re.compile(r"\btxlib\.real\b|from \.\.real import")
LOCAL_ONLY_NOTE = """\
> **Run this lesson on your computer.** It starts real processes and databases (SQLite
> files, PostgreSQL, `kill -9`), which a browser tab cannot: here you can read it with
> the outputs of a real run, but its cells will not run. To run it, clone the course and
> type `python3 course.py lab` (see the README)."""
PYODIDE_KERNEL = {"name": "python", "display_name": "Python (Pyodide)", "language": "python"}


class BuildError(Exception):
    """The site cannot be built; the message says why and what to do."""


def say(text: str) -> None:
    print(f"build_lite: {text}", flush=True)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; raise BuildError with its output if it fails."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    except OSError as exc:
        raise BuildError(f"cannot run {cmd[0]}: {exc}") from exc
    if done.returncode != 0:
        raise BuildError(f"`{' '.join(cmd)}` failed ({done.returncode}):\n"
                         f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- versions ---------------------------------------------------------------------------
def pyodide_version() -> str:
    """The Pyodide version the installed kernel package is built for."""
    try:
        from jupyterlite_pyodide_kernel.constants import PYODIDE_VERSION
    except ImportError as exc:
        raise BuildError("jupyterlite-pyodide-kernel is not installed: run "
                         "`python3 course.py lite`, which installs the `lite` extra") from exc
    return str(PYODIDE_VERSION)


# --- 1. the Pyodide runtime, from npm -----------------------------------------------------
def pyodide_runtime(version: str, into: Path) -> dict[str, Any]:
    """Put Pyodide's runtime files in ``into``; return its original lock file."""
    tarball = CACHE / f"pyodide-{version}.tgz"
    if not tarball.exists():
        if shutil.which("npm") is None:
            raise BuildError("npm is needed to fetch the Pyodide runtime (the npm package "
                             f"pyodide@{version}); install Node.js with npm")
        say(f"fetching pyodide@{version} from npm")
        CACHE.mkdir(parents=True, exist_ok=True)
        run(["npm", "pack", f"pyodide@{version}", "--pack-destination", str(CACHE)],
            cwd=CACHE)
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        for name in (*RUNTIME_FILES, "pyodide-lock.json"):
            member = tar.extractfile(f"package/{name}")
            if member is None:
                raise BuildError(f"{tarball.name} has no {name}")
            (into / name).write_bytes(member.read())
    lock: dict[str, Any] = json.loads((into / "pyodide-lock.json").read_text())
    return lock


# --- 2. the wheels, from PyPI -----------------------------------------------------------
@dataclass
class Wheel:
    name: str  # canonical
    version: str
    path: Path
    requires: list[Requirement]
    imports: list[str]


def browser_environment(python: str) -> dict[str, str]:
    """Marker values of Pyodide's Python ``python`` (e.g. "3.14.2")."""
    return {"sys_platform": "emscripten", "platform_system": "Emscripten",
            "platform_machine": "wasm32", "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "python_version": ".".join(python.split(".")[:2]),
            "python_full_version": python, "extra": ""}


def read_wheel(path: Path) -> tuple[str, str, list[Requirement], list[str]]:
    """(name, version, Requires-Dist, top-level import names) of a wheel."""
    with zipfile.ZipFile(path) as whl:
        names = whl.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA")
                         and n.count("/") == 1)
        meta = email.parser.Parser().parsestr(whl.read(meta_name).decode("utf-8"))
        top: set[str] = set()
        for name in names:
            first = name.split("/", 1)[0]
            if first.endswith((".dist-info", ".data")):
                continue
            if "/" in name:
                top.add(first)
            elif name.endswith(".py"):
                top.add(name[:-3])
    requires = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
    return canonicalize_name(meta["Name"]), meta["Version"], requires, sorted(top)


def download_wheel(name: str, version: str, python: str) -> Path:
    """The pure-Python wheel ``name==version`` for Pyodide's Python, from PyPI (cached)."""
    folder = CACHE / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    words = "[-_.]".join(re.escape(word) for word in name.split("-"))
    pattern = re.compile(rf"^{words}-{re.escape(version)}-", re.IGNORECASE)
    found = [p for p in folder.glob("*.whl") if pattern.match(p.name)]
    if not found:
        say(f"fetching {name}=={version} from PyPI")
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--python-version", python, "--implementation", "py",
             "--abi", "none", "--platform", "any", "--dest", str(folder),
             f"{name}=={version}"])
        found = [p for p in folder.glob("*.whl") if pattern.match(p.name)]
    if not found:
        raise BuildError(f"PyPI has no pure-Python wheel of {name}=={version}")
    return found[0]


def txlib_wheel() -> Path:
    """txlib's wheel, built from this checkout."""
    folder = CACHE / "txlib"
    shutil.rmtree(folder, ignore_errors=True)
    say("building txlib's wheel from this checkout")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(folder), str(ROOT)])
    (wheel,) = folder.glob("txlib-*.whl")
    return wheel


def kernel_wheels() -> dict[str, Path]:
    """The wheels the kernel package brings (its piplite, pyodide-kernel, ipykernel)."""
    folder = (Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyterlite"
              / "pyodide-kernel-extension" / "static" / "pypi")
    found = {canonicalize_name(p.name.split("-")[0]): p for p in folder.glob("*.whl")}
    for name in ("piplite", "pyodide-kernel", "ipykernel"):
        if name not in found:
            raise BuildError(f"the kernel package's {name} wheel is not in {folder}")
    return found


def wanted_version(name: str, lock: dict[str, Any]) -> str:
    """Pyodide's version of ``name`` if its lock lists it, else the one installed here."""
    packages = lock["packages"]
    if name in packages:
        return str(packages[name]["version"])
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError as exc:
        raise BuildError(f"the browser needs {name}, which neither Pyodide's lock file "
                         "nor this environment has a version of") from exc


def collect_wheels(lock: dict[str, Any]) -> dict[str, Wheel]:
    """Every wheel the kernel and txlib need in the browser, dependencies followed."""
    python = lock["info"]["python"]
    env = browser_environment(python)
    wheels: dict[str, Wheel] = {}
    kernel = kernel_wheels()
    todo: list[Requirement] = [Requirement(name) for name in ROOTS]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in wheels or name in FRONT_END_ONLY:
            continue
        if name == "txlib":
            path = txlib_wheel()
        elif name in kernel:
            path = kernel[name]
        else:
            path = download_wheel(name, wanted_version(name, lock), python)
        wheel_name, version, requires, imports = read_wheel(path)
        if not req.specifier.contains(Version(version), prereleases=True):
            raise BuildError(f"{req} is needed in the browser, but the version chosen for "
                             f"it is {version} (Pyodide's, or the one installed here)")
        wheels[name] = Wheel(wheel_name, version, path, requires, imports)
        for dep in requires:
            extras = req.extras or {""}
            if dep.marker is None or any(dep.marker.evaluate({**env, "extra": e})
                                         for e in extras):
                todo.append(dep)
    return wheels


# --- 3. the trimmed lock file -----------------------------------------------------------
def write_lock(lock: dict[str, Any], wheels: dict[str, Wheel], into: Path) -> None:
    """Copy the wheels into ``into`` and list exactly them in its pyodide-lock.json."""
    packages: dict[str, Any] = {}
    for name, wheel in sorted(wheels.items()):
        shutil.copy2(wheel.path, into / wheel.path.name)
        env = browser_environment(lock["info"]["python"])
        depends = sorted({canonicalize_name(r.name) for r in wheel.requires
                          if (r.marker is None or r.marker.evaluate(env))
                          and canonicalize_name(r.name) not in FRONT_END_ONLY})
        packages[name] = {
            "name": name, "version": wheel.version, "file_name": wheel.path.name,
            "install_dir": "site", "sha256": sha256(wheel.path), "package_type": "package",
            "imports": wheel.imports, "depends": depends, "unvendored_tests": False,
        }
    trimmed = {"info": lock["info"], "packages": packages}
    (into / "pyodide-lock.json").write_text(json.dumps(trimmed, indent=1) + "\n")


# --- 4. the lessons -----------------------------------------------------------------------
def local_only(notebook: Path, cells: list[dict[str, Any]]) -> bool:
    """True when the lesson imports txlib.real (itself or through its lesson module)."""
    module = ROOT / "txlib" / "course" / f"l{notebook.stem}.py"
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    module_code = module.read_text() if module.exists() else ""
    return bool(LOCAL_ONLY.search(code) or LOCAL_ONLY.search(module_code))


def copy_lessons(into: Path) -> list[str]:
    """Copy the lessons into ``into`` for the Pyodide kernel; return the local-only ones."""
    into.mkdir(parents=True, exist_ok=True)
    local: list[str] = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        # Read with nbformat: it joins the lines of sources and outputs, which the site
        # hands to JupyterLab as they are in the file (JupyterLab would show an output
        # kept as a list of lines with a comma between them).
        nb = json.loads(json.dumps(nbformat.read(path, as_version=4)))
        nb["metadata"]["kernelspec"] = dict(PYODIDE_KERNEL)
        if local_only(path, nb["cells"]):
            local.append(path.name)
            nb["cells"].insert(0, {"cell_type": "markdown", "id": "run-this-lesson-locally",
                                   "metadata": {"tags": ["local-only"]},
                                   "source": LOCAL_ONLY_NOTE})
        (into / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
    return local


# --- 5. the build -------------------------------------------------------------------------
def inputs_hash() -> str:
    """A hash of everything the site is built from."""
    digest = hashlib.sha256()
    files = [*sorted((ROOT / "txlib").rglob("*.py")), *sorted((ROOT / "txlib").rglob("*.json")),
             *sorted((ROOT / "txlib").rglob("*.js")),
             *sorted(NOTEBOOKS.glob("*.ipynb")), *sorted(CONFIG.glob("*")),
             ROOT / "pyproject.toml", Path(__file__).resolve()]
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    for dist in ("jupyterlite-core", "jupyterlite-pyodide-kernel", "ipywidgets",
                 "jupyterlab-widgets", *FRONT_ENDS):
        digest.update(f"{dist}=={metadata.version(dist)}".encode())
    return digest.hexdigest()


def build(output: Path) -> None:
    work = CACHE.parent / "lite-work"  # the lite dir jupyter lite builds from
    shutil.rmtree(work, ignore_errors=True)
    (work / "static").mkdir(parents=True)
    for name in ("jupyter-lite.json", "overrides.json"):
        shutil.copy2(CONFIG / name, work / name)
    version = pyodide_version()
    runtime = work / "static" / "pyodide"  # where the kernel's build addon picks it up
    lock = pyodide_runtime(version, runtime)
    wheels = collect_wheels(lock)
    write_lock(lock, wheels, runtime)
    say(f"Pyodide {version} (Python {lock['info']['python']}) with "
        + ", ".join(f"{w.name} {w.version}" for _, w in sorted(wheels.items())))
    local = copy_lessons(work / "contents")
    if local:
        say("run locally only (a note is added at the top): " + ", ".join(local))
    partial = output.with_name(output.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    say("jupyter lite build")
    run([sys.executable, "-m", "jupyterlite_core", "build", "--lite-dir", str(work),
         "--contents", str(work / "contents"), "--output-dir", str(partial),
         "--apps", "lab", "--apps", "tree", "--no-sourcemaps",
         "--no-unused-shared-packages"], cwd=work)
    check_site(partial, wheels)
    shutil.rmtree(output, ignore_errors=True)
    partial.rename(output)


def check_site(site: Path, wheels: dict[str, Wheel]) -> None:
    """Fail the build if the site would reach for a CDN or lacks a wheel it lists."""
    config = json.loads((site / "jupyter-lite.json").read_text())["jupyter-config-data"]
    kernel = config["litePluginSettings"][KERNEL_SETTINGS]
    if not kernel.get("pyodideUrl", "").startswith("./"):
        raise BuildError(f"the site loads Pyodide from {kernel.get('pyodideUrl')!r}, not "
                         "from itself")
    if kernel.get("disablePyPIFallback") is not True:
        raise BuildError("lite/jupyter-lite.json must set disablePyPIFallback")
    preloaded = kernel.get("loadPyodideOptions", {}).get("packages", [])
    if sorted(preloaded) != sorted(KERNEL_PACKAGES):
        raise BuildError(f"lite/jupyter-lite.json preloads {preloaded}, not the kernel's "
                         f"{list(KERNEL_PACKAGES)}")
    for name in FRONT_ENDS:
        if not (site / "extensions" / name / "package.json").exists():
            raise BuildError(f"the site lacks {name}'s JupyterLab extension: install "
                             f"{name} in this environment (the project depends on it)")
    for wheel in wheels.values():
        if not (site / "static" / "pyodide" / wheel.path.name).exists():
            raise BuildError(f"{wheel.path.name} is missing from the site")


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site's files with the types browsers insist on (WebAssembly, modules)."""

    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
        ".json": "application/json", ".whl": "application/zip", ".ipynb": "application/json"}

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: one line per file would bury the URL


def serve(site: Path, port: int) -> None:
    """Serve ``site`` on 127.0.0.1:``port`` (0: a free one) until interrupted."""
    handler = functools.partial(SiteHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        print(f"serving {site} at {url} (Ctrl-C stops)", flush=True)
        print(url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def site_size(site: Path) -> int:
    return sum(p.stat().st_size for p in site.rglob("*") if p.is_file())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the site's folder")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--serve", action="store_true",
                        help="then serve the site on 127.0.0.1 and print its URL")
    parser.add_argument("--port", type=int, default=8000,
                        help="the port to serve on (0: any free one; default 8000)")
    args = parser.parse_args(argv)
    output: Path = args.output.resolve()
    stamp = output / STAMP_NAME
    wanted = inputs_hash()
    if not args.force and stamp.exists() and stamp.read_text().strip() == wanted:
        say("the site is up to date with this checkout; skipping the build")
    else:
        started = time.monotonic()
        try:
            build(output)
        except BuildError as exc:
            print(f"build_lite: error: {exc}", file=sys.stderr)
            return 1
        stamp.write_text(wanted + "\n")
        say(f"built in {time.monotonic() - started:.0f} s, "
            f"{site_size(output) / 1e6:.0f} MB")
    print(os.path.relpath(output, Path.cwd()) if output.is_relative_to(Path.cwd())
          else output, flush=True)
    if args.serve:
        serve(output, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

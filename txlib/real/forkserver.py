"""A tiny fork server: one Python process that has imported txlib once and forks a node
process per request, in a few milliseconds instead of the several hundred a fresh
interpreter with txlib's imports takes.

The runner writes one JSON node spec per line on the server's stdin; the server forks,
the child runs :func:`txlib.real.host.node_main`, and the server answers with the
child's pid on stdout. Children are reaped automatically (SIGCHLD ignored); a node
reports how it ends over its own control connection. When the runner goes away, the
server sees end of file and exits; its nodes exit when their control connection closes.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

PRELOAD = ("txlib.real.host", "txlib.real.stores", "txlib.real.postgres", "psycopg")


def serve() -> None:
    """The server's loop (run with ``python -c``)."""
    for module in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(module)
    from .host import node_main

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished nodes
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    for line in stdin:
        if not line.strip():
            continue
        spec = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the node
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()  # not in the runner's process group: a Ctrl-C there is the runner's
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.close(null)
            node_main(spec)  # never returns
            os._exit(1)
        stdout.write(f"{pid}\n".encode())
        stdout.flush()


class ForkServer:
    """The runner's handle on its fork server (one per runner process, started lazily)."""

    _instance: ForkServer | None = None
    _owner = 0

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parent.parent.parent)  # the folder holding txlib
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from txlib.real.forkserver import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, env=env,
            cwd=root, start_new_session=True,
        )
        self._lock = threading.Lock()
        atexit.register(self.close)

    @classmethod
    def get(cls) -> ForkServer:
        if cls._instance is None or cls._owner != os.getpid() or \
                cls._instance.proc.poll() is not None:
            cls._instance = cls()
            cls._owner = os.getpid()
        return cls._instance

    def spawn(self, spec: dict[str, Any]) -> int:
        """Fork a node running ``spec``; its pid."""
        with self._lock:
            stdin, stdout = self.proc.stdin, self.proc.stdout
            assert stdin is not None and stdout is not None  # both are pipes
            try:
                stdin.write(json.dumps(spec).encode() + b"\n")
                stdin.flush()
                answer = stdout.readline()
            except OSError:
                answer = b""
            if not answer:
                self._err.seek(0)
                text = self._err.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"the txlib fork server died: {text.strip()}")
            return int(answer)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self._err.close()

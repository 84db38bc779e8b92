"""A real network for real nodes: each node in its own Linux network namespace, joined
by a virtual switch, so that a partition is a link taken down between real processes.

Topology (made with ``ip``; needs root): a *switch* namespace holding a bridge; one
namespace per node, joined to the bridge by a veth pair (the node's link); and one more
veth pair from the runner's own namespace to the bridge (the runner's control
connections travel the same switch). Everyone gets an address in one ``10.231.K.0/24``
subnet (``K`` chosen free on this machine); nothing is routed anywhere else.

:meth:`Network.isolate` takes a node's link down (its switch port), :meth:`Network.heal`
brings it back. TCP does what TCP does: data on an established connection waits in the
sender's kernel and is retransmitted after the heal (a message is *delayed*), and a new
connection cannot be opened while the link is down. :class:`~txlib.real.RealSystem`
bounds every partition in time.

Namespaces are named ``txlib-<pid>-<token>-...``: :func:`sweep` deletes those whose
owner process is dead, so a killed runner leaves nothing behind for long.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..errors import TxlibError
from .cluster import pid_alive

PREFIX = "txlib-"
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000


def available() -> str:
    """'' if namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip program is missing (Debian: apt-get install iproute2)"
    return ""


def ip(*args: str) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TxlibError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def enter(name: str) -> None:
    """Move the calling process into network namespace ``name`` (in a node process,
    before it opens any socket)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def sweep() -> list[str]:
    """Delete the namespaces of txlib networks whose owner died (deleting a namespace
    deletes its links, and a veth's peer with it)."""
    gone = []
    for path in sorted(NETNS_DIR.glob(f"{PREFIX}*")) if NETNS_DIR.exists() else []:
        m = re.match(rf"{PREFIX}(\d+)-", path.name)
        if m and not pid_alive(int(m.group(1))):
            with contextlib.suppress(TxlibError):
                ip("netns", "del", path.name)
            gone.append(path.name)
    return gone


class Network:
    """The namespaces, links and addresses of ``nodes`` (see the module docstring).
    Use as a context manager, or call :meth:`close`."""

    def __init__(self, nodes: Sequence[str]) -> None:
        why = available()
        if why:
            raise TxlibError(f"cannot make a real network: {why}")
        sweep()
        self.nodes = tuple(nodes)
        self.owner = os.getpid()
        self.token = os.urandom(3).hex()
        base = f"{PREFIX}{self.owner}-{self.token}"
        self.switch = f"{base}-switch"
        self.netns = {n: f"{base}-{i}" for i, n in enumerate(self.nodes)}
        self.subnet = self._free_subnet()
        self.addresses = {n: f"10.231.{self.subnet}.{i + 1}" for i, n in enumerate(self.nodes)}
        self.runner_address = f"10.231.{self.subnet}.254"
        self.runner_link = f"tx{self.token}r"  # (deleted with the switch: a veth pair)
        self.isolated: set[str] = set()
        self.closed = False
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _free_subnet() -> int:
        used = set(re.findall(r"inet 10\.231\.(\d+)\.", ip("-4", "-o", "addr", "show")))
        free = [k for k in range(256) if str(k) not in used]
        if not free:
            raise TxlibError("no free 10.231.K.0/24 subnet for a txlib network")
        return random.choice(free)

    def _build(self) -> None:
        sw = self.switch
        ip("netns", "add", sw)
        ip("-n", sw, "link", "add", "br0", "type", "bridge")
        ip("-n", sw, "link", "set", "br0", "up")
        for i, node in enumerate(self.nodes):
            ns = self.netns[node]
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", sw, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0",
               "netns", ns)
            ip("-n", sw, "link", "set", f"p{i}", "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{self.addresses[node]}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
        ip("link", "add", self.runner_link, "type", "veth", "peer", "name", "runner",
           "netns", sw)
        ip("-n", sw, "link", "set", "runner", "master", "br0", "up")
        ip("addr", "add", f"{self.runner_address}/24", "dev", self.runner_link)
        ip("link", "set", self.runner_link, "up")

    def port(self, node: str) -> str:
        return f"p{self.nodes.index(node)}"

    def isolate(self, node: str) -> None:
        """Take ``node``'s link down: nothing reaches it or leaves it until :meth:`heal`."""
        ip("-n", self.switch, "link", "set", self.port(node), "down")
        self.isolated.add(node)

    def heal(self, node: str) -> None:
        """Bring ``node``'s link back up."""
        if node in self.isolated and not self.closed:
            ip("-n", self.switch, "link", "set", self.port(node), "up")
            self.isolated.discard(node)

    def close(self) -> None:
        """Delete every namespace and link of this network (the nodes must be gone)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(TxlibError):
            ip("link", "del", self.runner_link)
        for ns in (*self.netns.values(), self.switch):
            if (NETNS_DIR / ns).exists():
                with contextlib.suppress(TxlibError):
                    ip("netns", "del", ns)

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

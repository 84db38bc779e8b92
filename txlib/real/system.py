"""Real runs, the API: :class:`RealSystem` runs transactions over real node processes
(with crashes), and :func:`run_transfer` runs one transfer and returns its
:class:`~txlib.real.run.RealRun`.

The system is the bookkeeping of transactions: which began when, with which
operations and armed crashes, which crashes fired, and what each came to. Processes
are the :class:`~txlib.real.supervisor.Supervisor`'s job, databases the
:class:`~txlib.real.databases.Databases`' job; the nodes and their state machines
come from the roster of the run's commit protocol (2PC unless told otherwise), and
its own ``judge`` judges each transaction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..engine.config import MAX_NUMBER, EngineConfig
from ..engine.records import LogRecord
from ..engine.trace import Trace
from ..errors import TxlibError, bad_choice, choices, shown, suggestion
from ..protocols import Protocol, bank, get_protocol
from ..protocols.base import COORDINATOR
from .crashpoints import MAX_SECONDS, Crash, as_crashes
from .databases import Databases
from .merge import merge, read_events
from .powercut import VFS_NAME, lose_unsynced
from .roles import (
    protocol_record,
    protocol_record_name,
    real_protocol,
    real_timing,
    store_record,
)
from .run import PROTOCOL, RealRun
from .stores import read_records
from .supervisor import NodeHandle, Supervisor

# Wall-clock timeouts (ms) of a real run: far above a loopback round trip with fsyncs,
# short enough that a crash test does not wait long.
REAL_TIMEOUTS: dict[str, int] = {
    "vote_timeout": 1000,
    "prepare_timeout": 2000,
    "decision_timeout": 300,
    "retry_interval": 200,
    "ack_timeout": 300,
}


# Wall-clock timeouts (ms) for runs that must reach one particular outcome (lesson 12's,
# tests/real's): a vote timeout far above the slowest PREPARE round seen on a loaded
# 2-core machine, the others short so that an in-doubt node asks again soon.
QUICK_TIMEOUTS: dict[str, int] = {
    "vote_timeout": 1000,
    "prepare_timeout": 1000,
    "decision_timeout": 150,
    "retry_interval": 100,
    "ack_timeout": 150,
}


def timing_for(protocol: str, profile: Mapping[str, int]) -> dict[str, int]:
    """``profile`` (such as :data:`QUICK_TIMEOUTS`, a timing for any protocol) without the
    options ``protocol`` never reads (3PC waits by timeouts of its own)."""
    unused = get_protocol(protocol).unused_options
    return {k: v for k, v in profile.items() if k not in unused}


class InDoubtWarning(UserWarning):
    """Prepared work was found in doubt and resolved from the logs (at close, or left by
    a dead process), or could not be resolved."""


MADE_WORKDIRS: list[Path] = []  # every work folder a system of this process made
MAX_TX_NAME = 64  # characters in a transaction's name
MAX_PARTITION = 60.0  # seconds a partition may last: they always heal
# The records 2PC forces, and whose node forces them: ``no_fsync`` may name them (in
# another protocol, its own name of the participant's prepared record).
FORCED_RECORDS: dict[str, str] = {"COMMIT": "coordinator", "PREPARED": "participant",
                                  "COMMITTED": "participant"}
# Options of the simulated world (its network, clock and stop) that real processes do
# not have: a real network, clock and disk take their place.
SIMULATED_ONLY = tuple(f.name for f in dataclasses.fields(EngineConfig))
# A transfer's own settings: arguments of RealSystem, not options of the protocol.
OWN_ARGUMENTS = ("amount", "operations", "balances")
SHOWN_TXS = 10  # transactions an error about an unknown one lists (the latest)


def seconds(what: str, value: object, *, zero: bool = False) -> float:
    """``value`` as a number of seconds (more than 0, or at least 0 with ``zero``), at
    most :data:`MAX_SECONDS`; else a TxlibError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not (value >= 0 if zero else value > 0) or not value <= MAX_SECONDS:
        low = "at least 0" if zero else "more than 0"
        raise TxlibError(f"{what} must be a number of seconds, {low} and at most "
                         f"{MAX_SECONDS:.0f}, got {shown(value)}")
    return float(value)


@functools.cache
def forced_by(protocol: str, participants: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    """(record, role) for every record ``protocol`` forces in a simulated commit."""
    from ..simulation.scenario import Scenario

    run = Scenario(protocol, participants).run(record=False)
    return frozenset((r.record, run.roster.roles[node]) for node, records in run.logs.items()
                     for r in records if r.forced)


def _check_options(options: Mapping[str, Any], proto: Protocol) -> None:
    """Refuse options a real run would silently ignore, and unknown ones, naming those a
    real run of ``proto`` takes (not the simulated world's, nor a transfer's own)."""
    known = proto.config_class.option_names()
    for key in options:
        if key in SIMULATED_ONLY:
            raise TxlibError(
                f"option {key!r} belongs to the simulated world (network, clock, steps): a "
                "real run has a real network and clock; its options are the protocol's "
                "own (timeouts in wall-clock ms, Paxos Commit's acceptors, ...)")
        if key in OWN_ARGUMENTS:
            raise TxlibError(f"{key!r} is an argument of its own, not an option: "
                             f"RealSystem(..., {key}=...) or run_transfer(..., {key}=...)")
        if key not in known:
            raise bad_choice("option", key, [
                n for n in known if n not in (*SIMULATED_ONLY, *OWN_ARGUMENTS, "tx")
                and n not in proto.unused_options])


def _at_most_max(what: str, values: Mapping[str, Any]) -> None:
    """Amounts and balances fit a database's 64-bit integers, with room to add."""
    for name, value in values.items():
        amount = value[1] if isinstance(value, tuple) else value
        if amount > MAX_NUMBER:
            raise TxlibError(f"{what} of {name} must be at most {MAX_NUMBER:,}, got "
                             f"{shown(amount)}")


class RealSystem:
    """The nodes of a commit protocol running as real processes: a coordinator and
    participants (and Paxos Commit's acceptors).

    >>> with RealSystem(participants=3) as system:            # doctest: +SKIP
    ...     system.begin("T1", crash=("coordinator", "after_decision_logged"))
    ...     system.settle("T1")
    ...     run = system.result("T1")

    ``backend`` is ``"sqlite"`` (one database file per participant, no server),
    ``"postgres"`` (one database per participant on the server ``postgres``: a
    :class:`~txlib.real.PostgresServer` or a libpq connection string), or a mapping
    ``{participant: "sqlite" | "postgres"}``: different databases in one transaction,
    what XA is for. ``protocol`` is a registered commit protocol whose participants
    prepare (``"2pc"``, ``"3pc"``, ``"paxos-commit"``; see
    :func:`txlib.real.roles.real_protocols`): one process per node of its roster. Its
    ``options`` (e.g. Paxos Commit's ``acceptors``) have timeouts in wall-clock ms: see
    :data:`REAL_TIMEOUTS`; the protocol's other timing options default to its simulated
    ones times :data:`~txlib.real.roles.REAL_SCALE`. A crashed node
    is restarted ``restart_delay`` seconds later if ``restart`` is true.

    ``power_cuts=True`` tracks every write to the nodes' files that was not synced, so
    that a crash can be a power cut that loses them (``Crash(..., power=True)``,
    :meth:`power_cut`; see :mod:`txlib.real.powercut`). ``no_fsync`` names forced
    records (``"COMMIT"``, ``"PREPARED"``, ``"COMMITTED"``) written *without* their
    fsync: an unsafe variant, to see what the fsync is for.

    ``network=True`` puts each node in its own network namespace, joined by a virtual
    switch (root only; SQLite participants), so that :meth:`partition` takes a real link
    down for a bounded time (see :mod:`txlib.real.netns`).
    """

    def __init__(
        self,
        participants: int | Sequence[str] = 3,
        backend: str | Mapping[str, str] = "sqlite",
        *,
        protocol: str = PROTOCOL,
        postgres: Any = None,
        amount: int = 100,
        operations: Mapping[str, Any] | None = None,
        balances: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        restart: bool = True,
        restart_delay: float = 0.1,
        vote_no: Sequence[str] = (),
        record: bool = True,
        workdir: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        database_prefix: str = "txlib_",
        start_timeout: float = 30.0,
        power_cuts: bool = False,
        no_fsync: Sequence[str] = (),
        network: bool = False,
    ) -> None:
        from ..simulation.scenario import participant_names

        proto = self.protocol = real_protocol(protocol)
        if options is not None and not isinstance(options, Mapping):
            raise TxlibError(f"options must be a mapping of option names to values, "
                             f"got {shown(options)}")
        _check_options(options or {}, proto)
        # options given that the protocol never reads are refused, as in a simulated run
        # (timing_for fits a timing profile to a protocol)
        self.options = {**timing_for(proto.name, {**real_timing(proto), **REAL_TIMEOUTS}),
                        **dict(options or {})}
        self.options.pop("tx", None)
        names = participant_names(participants)
        for name in names:  # each names a file: data/<name>.sqlite, trace/<name>.jsonl
            if "/" in name or os.sep in name:
                raise TxlibError(f"participant names must not contain {os.sep!r} or '/' "
                                 f"(each names its files), got {shown(name)}")
        proto.check_participants(names, self.options)
        self.roster = proto.roster(names, self.options)
        self.participants = self.roster.deciders
        self.nodes = self.roster.names
        machines = {m.role: m for m in proto.machines}
        self.machines = {n: machines[role] for n, role in self.roster.roles.items()}
        if not isinstance(power_cuts, bool):
            raise TxlibError(f"power_cuts must be True or False, got {power_cuts!r}")
        self.power_cuts = power_cuts
        self.databases = Databases(backend, self.participants, postgres=postgres,
                                   prefix=database_prefix,
                                   vfs=VFS_NAME if power_cuts else None)
        self.backend = self.databases.backend
        # FORCED_RECORDS under the protocol's names (3PC's participant prepares by READY),
        # those it forces (Paxos Commit's coordinator logs COMMIT lazily).
        forced = forced_by(proto.name, names)
        self.forced_records = {name: who for name, who in (
            (protocol_record_name(proto, r), who) for r, who in FORCED_RECORDS.items())
            if (name, who) in forced}
        self.no_fsync = self._check_no_fsync(no_fsync)
        if not isinstance(network, bool):
            raise TxlibError(f"network must be True or False, got {network!r}")
        if network and self.databases.on_postgres():
            raise TxlibError(
                "network=True needs SQLite participants: a node in its own network "
                "namespace cannot reach a PostgreSQL server on this machine's loopback")
        self.network_wanted = network
        self.network: Any = None
        if not isinstance(amount, int) or isinstance(amount, bool) or not \
                0 <= amount <= MAX_NUMBER:
            raise TxlibError(f"amount must be a whole number from 0 to {MAX_NUMBER:,}, "
                             f"got {shown(amount)}")
        self.operations = self._check_operations(operations) if operations is not None \
            else bank.default_operations(self.participants, amount)
        self.initial_balances = bank.check_balances(balances, self.participants)
        _at_most_max("the balance", self.initial_balances)
        # the protocol's configuration (making it names any unknown option)
        self.config = proto.make_config(self.participants, self.options)
        if isinstance(vote_no, str) or not isinstance(vote_no, (Sequence, set, frozenset)):
            hint = f"; did you mean vote_no=[{vote_no!r}]?" if vote_no in self.participants \
                else ""
            raise TxlibError(f"vote_no must be a list of participants, got "
                             f"{shown(vote_no)}{hint}")
        for p in vote_no:
            if p not in self.participants:
                raise bad_choice("participant in vote_no", p, self.participants)
        self.vote_no = tuple(vote_no)
        for what, flag in (("restart", restart), ("record", record)):
            if not isinstance(flag, bool):
                raise TxlibError(f"{what} must be True or False, got {shown(flag)}")
        self.record = record
        if not isinstance(host, str) or not host:
            raise TxlibError(f"host must be an address such as '127.0.0.1', got {shown(host)}")
        if ports is not None and not isinstance(ports, Mapping):
            raise TxlibError(f"ports must be a mapping of node names to port numbers, "
                             f"e.g. {{'p1': 7001}}, got {shown(ports)}")
        if workdir is not None and not isinstance(workdir, (str, os.PathLike)):
            raise TxlibError(f"workdir must be a folder's path (a str or a Path), got "
                             f"{shown(workdir)}")
        self.supervisor = Supervisor(
            self.nodes, host=host, ports=dict(ports or {}), record=record, restart=restart,
            restart_delay=seconds("restart_delay", restart_delay, zero=True),
            start_timeout=seconds("start_timeout", start_timeout),
            spec=self._node_spec, self_killed=self._self_killed)
        self._own_workdir = workdir is None
        # The run's folder (trace files, node logs, SQLite files, the coordinator's log):
        # a new temporary one, made by start() and removed by close(), unless given.
        self.workdir = Path(workdir) if workdir is not None else Path()
        self.begun: list[str] = []
        self.begun_at: dict[str, float] = {}
        self.tx_operations: dict[str, dict[str, tuple[str, int]]] = {}
        self.before: dict[str, dict[str, int]] = {}
        self.plans: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.armed: dict[str, list[Crash]] = {}
        self.crashes: dict[str, list[dict[str, Any]]] = {}
        self.unfired: dict[str, list[str]] = {}
        self.settled_at: dict[str, float] = {}
        self.closing_report: list[str] = []
        self._closed = False

    def _check_operations(self, raw: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
        ops = bank.check_operations(raw, self.participants)
        _at_most_max("the amount", ops)
        return ops

    def _check_no_fsync(self, raw: Sequence[str]) -> frozenset[str]:
        if isinstance(raw, str) or not isinstance(raw, (Sequence, frozenset, set)):
            raise TxlibError(f"no_fsync must be a list of record names, got {raw!r}")
        for record in raw:
            if record in FORCED_RECORDS and record not in self.forced_records and \
                    protocol_record_name(self.protocol, record) == record:
                raise TxlibError(
                    f"no_fsync={record!r}: {self.protocol.name}'s {FORCED_RECORDS[record]} "
                    f"does not force {record} (it writes it lazily or not at all); no_fsync "
                    f"may name: {choices(self.forced_records)}")
            if record not in self.forced_records:
                raise bad_choice("forced record in no_fsync", record,
                                 tuple(self.forced_records))
            if self.forced_records[record] == "participant" and self.databases.on_postgres():
                raise TxlibError(
                    f"no_fsync={record!r} needs SQLite participants: PostgreSQL always "
                    "flushes its WAL for PREPARE TRANSACTION and COMMIT PREPARED")
        return frozenset(raw)

    # --- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> RealSystem:
        if not self.started:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def started(self) -> bool:
        return self.supervisor.started

    def start(self) -> RealSystem:
        """Check the configuration, make fresh databases, start every node."""
        if self._closed:
            raise TxlibError("this RealSystem is closed and cannot start again: make a new "
                             "RealSystem(...)")
        if self.started:
            raise TxlibError("this RealSystem is already started (by start() or `with`)")
        if self._own_workdir:
            self.workdir = Path(tempfile.mkdtemp(prefix="txlib-real-"))
            MADE_WORKDIRS.append(self.workdir)
        try:
            if self.network_wanted:
                from .netns import Network

                self.network = self.supervisor.network = Network(self.nodes)
            self.supervisor.claim_ports()
            self.databases.check_server()
            for sub in ("trace", "logs", "data"):  # ours: start them afresh
                shutil.rmtree(self.workdir / sub, ignore_errors=True)
                (self.workdir / sub).mkdir(parents=True)
            done = self.databases.create(self.workdir, self.initial_balances,
                                         self.workdir / "data" / f"{COORDINATOR}.log",
                                         self.protocol.name, self.options)
            if done:
                warnings.warn("transactions a dead txlib process left in doubt were "
                              "resolved: " + "; ".join(done), InDoubtWarning, stacklevel=2)
            self.supervisor.start(self.workdir)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> list[str]:
        """Stop every node (gracefully if it is up); then resolve whatever this system
        left prepared in a participant's database, as the protocol concludes from the
        nodes' logs (the recovery scan of :mod:`txlib.real.recovery`; what they cannot
        tell yet is left in doubt), and say so with an
        :class:`InDoubtWarning`; then remove the work folder (if it made it). Returns
        what the scan did (also kept in ``closing_report``). Cleanup goes on past an
        error; the error is reported in the warning."""
        if self._closed:
            return self.closing_report
        self._closed = True
        report: list[str] = []
        if self.network is not None:  # heal first, so the nodes hear "stop"
            for node in list(self.network.isolated):
                self.network.heal(node)
        try:
            self.supervisor.close()
        except Exception as exc:  # the rest of the cleanup must happen anyway
            report.append(f"stopping the nodes failed: {type(exc).__name__}: {exc}")
        try:
            if self.databases.created:
                report += self.recover(only_down=False)
        except Exception as exc:
            report.append(f"the recovery scan failed: {type(exc).__name__}: {exc}")
        try:
            self.databases.release()
        except Exception as exc:
            report.append(f"unregistering from the databases failed: {exc}")
        if self.network is not None:
            self.network.close()
        if self._own_workdir and self.workdir != Path():
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.closing_report = report
        if report:
            warnings.warn("RealSystem.close(): " + "; ".join(report), InDoubtWarning,
                          stacklevel=2)
        return report

    def _check_running(self, what: str) -> None:
        """Refuse ``what`` unless the system is started and not closed."""
        if self._closed:
            raise TxlibError(
                f"this RealSystem is closed, so {what} cannot be done: close() (the end of "
                "its `with` block) stopped its nodes. Do it inside the `with` block, or "
                "make a new RealSystem(...)")
        if not self.started:
            raise TxlibError(f"start the system first (RealSystem.start() or `with`): {what} "
                             "needs its nodes running")

    def _check_readable(self, what: str) -> None:
        """Refuse ``what`` (a reading of the databases, logs or trace) before start(), and
        after close() if the folder it reads is gone (the one the system made)."""
        if self._closed and (self._own_workdir or not self.databases.created):
            raise TxlibError(
                f"this RealSystem is closed, so {what} cannot be done: close() (the end of "
                "its `with` block) stopped its nodes and removed the folder it made, with "
                "their logs. Read what you need inside the `with` block (run = "
                "system.result(tx) there), or give RealSystem(workdir=...) a folder of "
                "yours, which it keeps")
        if not self._closed and not self.started:
            raise TxlibError(f"start the system first (RealSystem.start() or `with`): {what} "
                             "reads what its nodes did")

    def _check_node(self, node: str, what: str = "node") -> None:
        if node not in self.nodes:
            raise bad_choice(what, node, self.nodes)

    def _check_tx(self, tx: str) -> None:
        """Refuse a transaction this system never began."""
        if isinstance(tx, str) and tx in self.begun:
            return
        if not self.begun:
            raise TxlibError(f"unknown transaction {shown(tx)}: none has begun yet; "
                             "begin(tx) first")
        latest = self.begun[-SHOWN_TXS:]
        more = f" (the latest {SHOWN_TXS} of {len(self.begun)})" if len(self.begun) > \
            SHOWN_TXS else ""
        raise TxlibError(f"unknown transaction {shown(tx)}{suggestion(tx, latest)}; the "
                         f"transactions begun{more}: {choices(latest)}")

    def recover(self, *, only_down: bool = True) -> list[str]:
        """The coordinator's recovery scan (XA's ``xa_recover``): find this system's
        prepared work in the databases of the participants that are down (all of them
        with ``only_down=False``) and commit or roll back each as the durable logs say,
        by the rule of the system's protocol (or leave it in doubt when they cannot tell
        yet). Returns one line per item (see :mod:`txlib.real.recovery`)."""
        from .recovery import resolve, scan

        who = [p for p in self.participants
               if not only_down or not self.handles.get(p) or not self.handles[p].up]
        return resolve(self, scan(self, who))

    def recovery_scan(self) -> list[Any]:
        """This system's prepared work in every participant's database, without
        resolving it (see :func:`txlib.real.recovery.scan`)."""
        from .recovery import scan

        return list(scan(self))

    def store_spec(self, node: str) -> dict[str, Any]:
        """The spec of ``node``'s durable store (see :func:`txlib.real.stores.open_store`)."""
        return self._store(node)

    def _store(self, node: str) -> dict[str, Any]:
        """The spec of ``node``'s durable store: a participant's database, or a log file."""
        if node in self.participants:
            spec = self.databases.store(node)
            if self.databases.kinds[node] == "sqlite":
                spec["no_fsync"] = sorted(store_record(self.protocol, r) for r in self.no_fsync
                                          if self.forced_records[r] == "participant")
            return spec
        return {"kind": "file", "path": str(self.workdir / "data" / f"{node}.log"),
                "track": self.power_cuts,
                "no_fsync": sorted(r for r in self.no_fsync
                                   if self.forced_records[r] != "participant")}

    def files(self, node: str) -> list[Path]:
        """The files holding ``node``'s durable state (what a power cut of its machine can
        damage); a PostgreSQL participant's are the server's."""
        if node in self.participants:
            if self.databases.kinds[node] != "sqlite":
                return []
            path = self.databases.sqlite_path(node)
            return [path, Path(f"{path}-wal")]
        return [self.workdir / "data" / f"{node}.log"]

    def _node_spec(self, h: NodeHandle) -> dict[str, Any]:
        """What ``h``'s next process runs (the supervisor adds where and how)."""
        return {
            "protocol": self.protocol.name, "role": self.roster.roles[h.name],
            "participants": list(self.participants), "options": self.options,
            "operations": {p: list(op) for p, op in self.operations.items()},
            "marks": ["vote_no"] if h.name in self.vote_no else [],
            "store": self._store(h.name), "txs": list(self.begun),
            "triggers": self.plans.pop((h.name, h.incarnation), []),
        }

    # --- processes (the supervisor's) --------------------------------------------------------
    @property
    def handles(self) -> dict[str, NodeHandle]:
        return self.supervisor.handles

    @property
    def down(self) -> frozenset[str]:
        return self.supervisor.down

    @property
    def restart_delay(self) -> float:
        return self.supervisor.restart_delay

    @restart_delay.setter
    def restart_delay(self, seconds: float) -> None:
        self.supervisor.restart_delay = seconds

    def pump(self, timeout: float) -> None:
        """Handle what the nodes said and the due kills and restarts, waiting at most
        ``timeout`` seconds for something to happen. A timeout below 0 is time already
        up (``pump(end - time.monotonic())`` just after ``end``): nothing is waited for."""
        self._check_running("pump()")
        if isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout < 0:
            timeout = 0.0
        self.supervisor.pump(seconds("timeout", timeout, zero=True))

    def wait(self, predicate: Callable[[RealSystem], bool], timeout: float,
             what: str = "the condition") -> None:
        """Pump until ``predicate(self)`` holds; TxlibError after ``timeout`` seconds."""
        self._check_running("wait()")
        if not callable(predicate):
            raise TxlibError(f"wait() needs a function of the system that says when to stop "
                             f"waiting, e.g. lambda s: 'p1' in s.down; got {shown(predicate)}")
        self.supervisor.wait(lambda: predicate(self), seconds("timeout", timeout, zero=True),
                             what)

    def describe(self) -> str:
        return self.supervisor.describe()

    def stop_nodes(self, timeout: float = 10.0) -> None:
        """Ask every node that is up to stop (lazy log records are flushed) and wait."""
        self.supervisor.stop_nodes(timeout)

    def kill(self, node: str, *, how: str = "a time chosen by the runner",
             tx: str | None = None, power: bool = False) -> None:
        """SIGKILL ``node`` now (kill -9) and wait until it is gone. ``power``: a power
        cut, which also loses every write to its files that was not synced."""
        self._check_running(f"kill({node!r})")
        self._check_node(node, "node to kill")
        if power:
            self._check_power(node)
        self.supervisor.kill(node, f"power cut, {how}" if power else how)
        lost = self._lose_power(node) if power else None
        self._note_crash(self.handles[node], how, tx if tx is not None else self._current(),
                         lost)

    def power_cut(self, nodes: Sequence[str] | None = None, *,
                  how: str = "a power cut chosen by the runner", tx: str | None = None) -> None:
        """Cut the power of ``nodes`` (default: every node, the whole machine): each one
        that is up is killed, and every write to their files that was never synced is
        lost. With ``restart``, they come back ``restart_delay`` seconds later."""
        self._check_running("power_cut()")
        if isinstance(nodes, str):  # one node
            nodes = [nodes]
        for node in self.nodes if nodes is None else nodes:
            if node not in self.nodes:
                raise bad_choice("node", node, self.nodes)
            if self.handles[node].up:
                self.kill(node, how=how, tx=tx, power=True)
            else:
                self._check_power(node)
                self._lose_power(node)

    def partition(self, node: str, seconds: float, tx: str | None = None) -> None:
        """Take ``node``'s network link down now, and bring it back ``seconds`` later
        (at most 60): nothing reaches it or leaves it meanwhile; TCP delivers what was
        waiting after the heal. Needs ``network=True``."""
        self._check_running("partition()")
        if self.network is None:
            raise TxlibError("a partition needs RealSystem(network=True): only then does "
                             "each node have a link of its own to take down")
        if node not in self.nodes:
            raise bad_choice("node to cut off", node, self.nodes)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or \
                not 0 < seconds <= MAX_PARTITION:
            raise TxlibError(f"a partition lasts more than 0 and at most {MAX_PARTITION} "
                             f"seconds, got {shown(seconds)}")
        tx = tx if tx is not None else self._current()
        self.network.isolate(node)
        self.supervisor.event("partition", node, f"{node}'s link is down for {seconds} s", tx)

        def heal() -> None:
            self.network.heal(node)
            self.supervisor.event("heal", node, f"{node}'s link is up again", tx)

        self.supervisor.schedule(seconds, heal)

    def _check_power(self, node: str) -> None:
        if not self.power_cuts:
            raise TxlibError("a power cut needs RealSystem(power_cuts=True): only then are "
                             "the writes that were not synced tracked, so they can be lost")
        if node in self.participants and self.databases.kinds[node] != "sqlite":
            raise TxlibError(
                f"cannot cut the power of {node}: a PostgreSQL participant's data lives in "
                "the server, whose durability is PostgreSQL's own (the preflight checks "
                "fsync, synchronous_commit and full_page_writes); txlib cuts the power of "
                "the coordinator and of SQLite participants")

    def _lose_power(self, node: str) -> dict[str, int]:
        """The power cut itself (``node``'s processes are dead): lose its unsynced writes."""
        return lose_unsynced(self.files(node))

    def restart(self, node: str) -> None:
        """Start a new process for ``node`` (same port, same storage); it recovers from
        its durable log. Returns at once; :meth:`wait` or :meth:`settle` to see it back."""
        self._check_running(f"restart({node!r})")
        self._check_node(node, "node to restart")
        self.supervisor.restart(node)

    def state(self, node: str, tx: str) -> str | None:
        """``node``'s latest reported state in ``tx`` (None if down or not reported)."""
        self._check_readable("state()")
        self._check_node(node)
        h = self.handles[node]
        s = h.status.get(tx)
        return s["state"] if h.up and s else None

    # --- crashes ------------------------------------------------------------------------------
    def _now(self) -> float:
        """Seconds since the system started."""
        return (time.time_ns() - self.supervisor.t0_ns) / 1e9

    def _current(self) -> str | None:
        return self.begun[-1] if self.begun else None

    def _note_crash(self, h: NodeHandle, how: str, tx: str | None,
                    lost: dict[str, int] | None = None) -> None:
        """Note a crash (``lost``: for a power cut, the unsynced bytes lost per file)."""
        if tx is None:
            return
        at = (time.time_ns() - self.supervisor.t0_ns) // 1_000_000
        began = self.begun_at.get(tx, 0.0)
        self.crashes.setdefault(tx, []).append(
            {"node": h.name, "incarnation": h.incarnation, "how": how,
             "at_ms": at - int(began * 1000), "power": lost is not None,
             "lost": dict(lost or {})})

    def _self_killed(self, h: NodeHandle) -> bool:
        """Did ``h`` kill itself at an armed protocol point? If so, note the crash (and
        for a power cut, lose its unsynced writes now, before it restarts)."""
        label = self._fired_label(h)
        if label:
            power = any(c.power for crashes in self.armed.values() for c in crashes
                        if c.node == h.name and c.incarnation == h.incarnation
                        and c.point == label)
            self._note_crash(h, label, self._current(),
                             self._lose_power(h.name) if power else None)
        return bool(label)

    def _fired_label(self, h: NodeHandle) -> str:
        """The protocol point where ``h`` killed itself ('' if none was armed)."""
        path = self.workdir / "trace" / f"{h.name}.jsonl"
        if self.record and path.exists():
            for line in reversed(path.read_bytes().splitlines()[-20:]):
                with contextlib.suppress(ValueError):
                    e = json.loads(line)
                    if e.get("k") == "crash" and e.get("i") == h.incarnation:
                        return str(e.get("point", "a protocol point"))
        for crashes in self.armed.values():
            for c in crashes:
                if c.node == h.name and c.incarnation == h.incarnation and c.point:
                    return c.point
        return ""

    def _timed_kill(self, c: Crash, how: str, tx: str) -> None:
        """A wall-clock crash comes due: kill the node if that life of it is up."""
        h = self.handles[c.node]
        if h.up and h.incarnation == c.incarnation:
            self.kill(c.node, how=how, tx=tx, power=c.power)
        else:
            self.unfired.setdefault(tx, []).append(
                f"kill -9 {c.node} at {how}: {c.node} was not up then")

    # --- transactions ---------------------------------------------------------------------------
    def begin(self, tx: str = "T1", *, crash: Any = None,
              operations: Mapping[str, Any] | None = None) -> None:
        """Start transaction ``tx`` on every node (participants first). ``crash``: see
        :func:`txlib.real.crashpoints.as_crashes`; ``operations``: this transaction's
        ``{participant: (kind, amount)}`` (default: the system's). Returns at once."""
        self._check_running(f"begin({tx!r})")
        if not isinstance(tx, str) or not tx or tx in self.begun:
            raise TxlibError(f"tx must be a new, non-empty name, got {shown(tx)}")
        if len(tx) > MAX_TX_NAME or not tx.isprintable():
            raise TxlibError(
                f"tx must be at most {MAX_TX_NAME} printable characters (it names the "
                "prepared transactions in the databases, whose ids PostgreSQL limits to "
                f"200 bytes), got {shown(tx)} ({len(tx)} characters)")
        crashes = as_crashes(crash, self.nodes, self.roster.roles)
        for c in crashes:
            if c.power:
                self._check_power(c.node)
        ops = self._check_operations(operations) if operations is not None else self.operations
        self.tx_operations[tx] = ops
        if self.record:
            self.before[tx] = self.balances()
        self.begun.append(tx)
        self.begun_at[tx] = self._now()
        self.armed[tx] = list(crashes)
        triggers: dict[str, list[dict[str, Any]]] = {}
        for c in crashes:
            if c.point is not None:
                trig = {**c.trigger(len(self.participants)), "tx": tx}
                h = self.handles[c.node]
                if c.incarnation == h.incarnation and h.up:
                    triggers.setdefault(c.node, []).append(trig)
                elif c.incarnation > h.incarnation:
                    self.plans.setdefault((c.node, c.incarnation), []).append(trig)
                else:
                    self.unfired.setdefault(tx, []).append(
                        f"{c.describe()}: that life of {c.node} is over")
            else:
                after = c.after or 0.0
                self.supervisor.schedule(
                    after, functools.partial(self._timed_kill, c, f"{after * 1000:.0f} ms", tx))
        self.supervisor.event("start", None, f"{tx} begins", tx)
        others = tuple(n for n in self.nodes if n not in self.participants)
        for name in (*self.participants, *others):  # the coordinator last
            h = self.handles[name]
            if h.up:
                self.supervisor.tell(h, {"t": "start", "tx": tx,
                                         "triggers": triggers.get(name, []),
                                         "operations": {p: list(op) for p, op in ops.items()}})

    @property
    def finishers(self) -> tuple[str, ...]:
        """The nodes that must finish a transaction: the driving node (the coordinator)
        and the deciders (the participants). Helpers (Paxos Commit's acceptors) need
        not: one that was never asked stays where it is."""
        return (self.roster.first, *self.participants)

    def settled(self, tx: str) -> bool:
        """Every node is up, the coordinator and every participant have finished ``tx``
        (are in a terminal state of their role's state machine), and no kill or restart
        is pending."""
        if self.supervisor.actions:
            return False
        for h in self.handles.values():
            if not (h.up and h.ready):
                return False
            if h.name not in self.finishers:
                continue
            s = h.status.get(tx)
            if s is None or s["state"] not in self.machines[h.name].terminal:
                return False
        return True

    def settle(self, tx: str = "T1", timeout: float = 30.0) -> bool:
        """Wait until :meth:`settled`; False if ``timeout`` seconds pass first."""
        self._check_running(f"settle({tx!r})")
        self._check_tx(tx)
        timeout = seconds("timeout", timeout, zero=True)
        try:
            self.wait(lambda s: s.settled(tx), timeout, f"{tx} to finish")
        except TxlibError:
            return False
        self.settled_at.setdefault(tx, self._now())
        return True

    # --- reading what happened ------------------------------------------------------------------
    def inspect(self) -> dict[str, dict[str, Any]]:
        """Each participant's committed balance, transactions in doubt and row lock,
        read from its database (from outside the node)."""
        self._check_readable("inspect()")
        return self.databases.inspect()

    def balances(self) -> dict[str, int]:
        return {p: int(i["balance"]) for p, i in self.inspect().items()}

    def read_logs(self, tx: str) -> dict[str, tuple[LogRecord, ...]]:
        """Each node's durable log records of ``tx``, read back from its storage."""
        self._check_readable(f"read_logs({tx!r})")
        self._check_tx(tx)
        return {n: tuple(r for r, _ in records)
                for n, records in self.read_decisions(tx).items()}

    def read_decisions(self, tx: str) -> dict[str, tuple[tuple[LogRecord, str | None], ...]]:
        """Each node's durable log records of ``tx`` (as :meth:`read_logs`), each with
        the outcome writing it decided (None for a record that decides nothing)."""
        logs = {n: tuple(read_records(self._store(n), n).get(tx, [])) for n in self.nodes}
        return {n: tuple((protocol_record(self.protocol, r), d) for r, d in records)
                if n in self.participants else records for n, records in logs.items()}

    def events(self) -> dict[tuple[str, int], list[dict[str, Any]]]:
        """Every recorded event so far, by source (see :func:`txlib.real.merge.merge`)."""
        self._check_readable("events()")
        return read_events(sorted((self.workdir / "trace").glob("*.jsonl")))

    def trace(self, tx: str, events: Any = None) -> Trace:
        """The trace of ``tx`` (``events``: from :meth:`events`, to read the files once)."""
        self._check_readable(f"trace({tx!r})")
        self._check_tx(tx)
        initial = {n: m.initial for n, m in self.machines.items()}
        return merge(self.events() if events is None else events, self.nodes, initial, tx)

    def result(self, tx: str = "T1", *, trace: bool = True) -> RealRun:
        """What ``tx`` came to, from the nodes' reports, the databases and (if recorded
        and ``trace``) the merged trace; judged by :class:`RealRun`."""
        self._check_readable(f"result({tx!r})")
        self._check_tx(tx)
        info = self.inspect()
        reports = {n: self.handles[n].status.get(tx) or {} for n in self.nodes}
        began = self.begun_at.get(tx, 0.0)
        end = self.settled_at.get(tx, self._now())
        return RealRun(
            backend=self.backend, tx=tx, participants=self.participants,
            settled=self.settled(tx) or tx in self.settled_at,
            decisions={n: r.get("decision") for n, r in reports.items()},
            states={n: r.get("state", "?") for n, r in reports.items()},
            down=frozenset(n for n, h in self.handles.items() if not h.up and not h.stopping),
            before=dict(self.before.get(tx, self.initial_balances)),
            balances={p: int(i["balance"]) for p, i in info.items()},
            operations=dict(self.tx_operations.get(tx, self.operations)),
            in_doubt={p: tuple(i["in_doubt"]) for p, i in info.items()},
            locked=tuple(p for p, i in info.items() if i["locked"]),
            crashes=tuple(self.crashes.get(tx, [])),
            unfired=tuple(self._unfired(tx)),
            fsyncs={n: h.fsyncs for n, h in self.handles.items()},
            elapsed=end - began, logs=self.read_logs(tx), options=dict(self.options),
            workdir=self.workdir,
            trace_or_none=self.trace(tx) if self.record and trace else None,
            protocol_name=self.protocol.name, finishers=self.finishers,
        )

    def _unfired(self, tx: str) -> list[str]:
        out = list(self.unfired.get(tx, []))
        fired = {(c["node"], c["incarnation"]) for c in self.crashes.get(tx, [])}
        for c in self.armed.get(tx, []):
            if c.point is not None and (c.node, c.incarnation) not in fired:
                out.append(f"{c.describe()}: the node never reached that point")
        return out


def run_transfer(
    participants: int | Sequence[str] = 3,
    backend: str | Mapping[str, str] = "sqlite",
    *,
    crash: Any = None,
    tx: str = "T1",
    timeout: float = 30.0,
    **options: Any,
) -> RealRun:
    """Run one transfer over real processes and storage, with optional crashes: by 2PC,
    or by the commit protocol ``protocol=`` names (``"3pc"``, ``"paxos-commit"``).

    The first participant pays ``amount`` (default 100) to each other one. ``crash`` is
    ``(node, point)`` for a named protocol point (see :data:`CRASH_POINTS`),
    ``(node, seconds)`` for a kill -9 that long after the start, a :class:`Crash`, or a
    list of them; a killed node is restarted (``restart_delay``, default 0.1 s) and
    recovers from its log. Other keywords go to :class:`RealSystem` (``protocol=``,
    ``postgres=``, ``options=`` for the protocol's options and timeouts, ``vote_no=``,
    ``workdir=``, ...). Returns once every node is back and has finished (or after
    ``timeout`` seconds, unsettled).

    >>> run = txlib.real.run_transfer(crash=("coordinator", "after_decision_logged"))
    ... # doctest: +SKIP
    >>> run.outcome, run.problems()                                  # doctest: +SKIP
    ('committed', [])
    """
    unknown = [k for k in options if k not in SYSTEM_ARGUMENTS]
    if unknown:
        error = bad_choice("argument of run_transfer", unknown[0],
                           ("participants", "backend", "crash", "tx", "timeout",
                            *SYSTEM_ARGUMENTS))
        raise TxlibError(f"{error} (a protocol's option goes in options=, e.g. "
                         f"options={{{unknown[0]!r}: ...}})")
    timeout = seconds("timeout", timeout)
    raw = crash if isinstance(crash, (list, tuple)) else [crash]
    if any(isinstance(c, Crash) and c.power for c in raw):
        options.setdefault("power_cuts", True)
    with RealSystem(participants, backend, **options) as system:
        system.begin(tx, crash=crash)
        system.settle(tx, timeout)
        system.stop_nodes()
        return system.result(tx)


# RealSystem's keyword arguments (run_transfer passes them on).
SYSTEM_ARGUMENTS = tuple(name for name, p in inspect.signature(RealSystem).parameters.items()
                         if p.kind is inspect.Parameter.KEYWORD_ONLY)

"""Lesson 12 (real databases, real crashes, ``notebooks/12_real_databases.ipynb``): the
lesson's helpers, and exercises checked against real runs.

The helpers read a real run's durable state from its files (:func:`read_database`,
:func:`read_coordinator_log`, :func:`show_storage`), play another program that wants a
held row (:func:`second_session`) and an operator who releases one by hand
(:func:`release_by_hand`), run the power-cut experiment (:func:`power_cut_runs`) and
each commit protocol with its coordinator killed after the votes
(:func:`coordinator_dies_after_the_votes`), show what an orphaned PostgreSQL prepared
transaction costs (:func:`orphans`,
:func:`locks_of_prepared`, :func:`churn`, :func:`vacuum_report`,
:func:`burn_transaction_ids`), draw a real run (:func:`draw`), name the largest part of a
measured commit (:func:`largest_part`), and :class:`CrashPanel` is the lesson's kill -9
widget.

Both checkers run :mod:`txlib.real` (real processes, SQLite participants, kill -9), not
the simulator. What they measure does not depend on timing, so the verdicts are the same
on every machine; each measurement runs once per Python process and is then reused.

- ``real-in-doubt-points``: after which of the coordinator's named crash points, with the
  coordinator kept down, is some participant left in doubt (prepared, its row held)?
  The checker crashes a real coordinator at every point and looks into the databases;
- ``real-fsyncs-per-commit``: how many fsyncs does each committed transfer cost a running
  system with N participants? The checker counts the fsyncs real nodes ask for.
"""

from __future__ import annotations

import atexit
import contextlib
import html
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..errors import TxlibError, bad_choice, choices
from ..real import CRASH_POINTS, Crash, RealRun, RealSystem, run_transfer
from ..real.system import QUICK_TIMEOUTS, timing_for
from ..simulation.run import Run
from ..viz.static import Picture, diagram
from . import Exercise, Feedback, register
from .checking import choice_set, function, whole_number, wrong_predictions
from .show import show_table

table = show_table

# Wall-clock timeouts (ms) of these runs: the vote timeout far above a PREPARE round on
# a loaded machine, the others short (tests/real uses them too).
TIMEOUTS: dict[str, int] = QUICK_TIMEOUTS
QUIET = 0.5  # seconds without any state change before a kept-down run counts as settled
LIMIT = 20.0  # seconds a single measurement may take before it is reported as failed
TERMINAL = ("COMMITTED", "ABORTED")
COORDINATOR_POINTS = CRASH_POINTS["coordinator"]


# --- reading a real run's files ----------------------------------------------------------

def _logged(tx: str, record: str, forced: Any) -> str:
    return f"{tx} {record} ({'forced' if forced else 'lazy'})"


def read_database(path: str | Path) -> tuple[tuple[Any, ...], list[str]]:
    """A participant's SQLite file, read from outside: its account row and its log."""
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT name, balance, locked_by, pending FROM accounts").fetchone()
        log = db.execute("SELECT tx, record, forced FROM txlog ORDER BY id").fetchall()
    finally:
        db.close()
    return row, [_logged(tx, record, forced) for tx, record, forced in log]


def read_coordinator_log(folder: str | Path) -> list[str]:
    """The records that reached the coordinator's log file (JSON lines)."""
    path = Path(folder) / "data" / "coordinator.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [_logged(r["tx"], r["record"], r["forced"]) for r in map(json.loads, lines)]


def show_storage(folder: str | Path, participants: Sequence[str]) -> None:
    """Every node's durable state, read from the files in the run's folder."""
    rows = [("coordinator.log", "", "", "", "", ", ".join(read_coordinator_log(folder)))]
    for p in participants:
        (name, balance, locked_by, pending), log = read_database(
            Path(folder) / "data" / f"{p}.sqlite")
        rows.append((f"{p}.sqlite", name, balance, "NULL" if locked_by is None else locked_by,
                     pending, ", ".join(log)))
    table(["file", "account", "balance", "locked_by", "pending", "log records"], rows)


def second_session(path: str | Path, account: str, amount: int, keep: bool = True) -> str:
    """Another program adds `amount` to `account` in the SQLite file at `path` with a
    plain UPDATE. While an in-doubt transaction holds the row, txlib's trigger refuses
    the write at once (SQLite has no row locks, so there is nothing to wait for). With
    keep=False it rolls its change back (it only tries)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("UPDATE accounts SET balance = balance + ? WHERE name = ?",
                       (amount, account))
        except sqlite3.IntegrityError as exc:
            db.execute("ROLLBACK")
            holder = db.execute("SELECT locked_by FROM accounts WHERE name = ?",
                                (account,)).fetchone()[0]
            return f"refused at once: {exc} ({holder})"
        balance = db.execute("SELECT balance FROM accounts WHERE name = ?",
                             (account,)).fetchone()[0]
        db.execute("COMMIT" if keep else "ROLLBACK")
        return (f"updated: {account}'s balance is now {balance}" if keep
                else "free: the UPDATE would go through")
    finally:
        db.close()


def release_by_hand(path: str | Path, tx: str, record: str = "ABORT") -> list[str]:
    """An operator's heuristic decision on an SQLite participant: first a plain release
    of the held row (refused: the trigger wants the resolution logged), then the logged
    one, ``record`` (``ABORT``: roll the reservation back; ``COMMITTED``: apply it)."""
    out = []
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        try:
            db.execute("UPDATE accounts SET locked_by = NULL, pending = 0")
            out.append("plain release: went through (unexpected!)")
        except sqlite3.IntegrityError as exc:
            out.append(f"plain release: refused: {exc}")
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO txlog(tx, record, data, forced, decides, time) "
                   "VALUES (?, ?, '{}', 1, ?, 0)",
                   (tx, record, "abort" if record == "ABORT" else "commit"))
        db.execute("UPDATE accounts SET balance = balance + "
                   + ("pending" if record == "COMMITTED" else "0")
                   + ", locked_by = NULL, pending = 0")
        db.execute("COMMIT")
        out.append(f"logged {record} for {tx}, then released the row: went through")
    finally:
        db.close()
    return out


# --- power cuts ---------------------------------------------------------------------------

def power_cut_runs() -> list[tuple[Any, ...]]:
    """The coordinator forces COMMIT, sends it, and stops, three ways: kill -9 and a
    power cut, with and without the fsync of COMMIT. One table row each."""
    rows = []
    for fsync in (True, False):
        for power in (False, True):
            run = run_transfer(3, crash=Crash("coordinator", point="after_commits_sent",
                                              power=power),
                               no_fsync=() if fsync else ["COMMIT"], options=TIMEOUTS,
                               power_cuts=True)
            lost = run.crashes[0]["lost"] if run.crashes else {}
            found = next((e.detail for e in run.trace
                          if e.kind == "recover" and e.node == "coordinator"), "")
            rows.append(("yes" if fsync else "NO", "power cut" if power else "kill -9",
                         "yes" if lost else "no", found.removeprefix("restarts with "),
                         " / ".join(f"{n} {d}" for n, d in run.decisions.items()),
                         run.outcome,
                         ", ".join(sorted({v.invariant for v in run.violations})) or "none"))
    return rows


# --- a coordinator that dies after the votes, under each commit protocol -----------------

# How soon, in wall-clock ms, the live nodes act without the coordinator: a 3PC
# participant starts the termination protocol, a Paxos Commit acceptor takes over.
WITHOUT_THE_COORDINATOR: dict[str, dict[str, int]] = {
    "2pc": {},
    "3pc": {"precommit_timeout": 300, "election_timeout": 150},
    "paxos-commit": {"takeover_timeout": 300, "takeover_gap": 200},
}
PATIENCE = 3.0  # seconds the coordinator stays down


def coordinator_dies_after_the_votes(protocol: str) -> tuple[str, ...]:
    """kill -9 the coordinator of a real ``protocol`` run at its named point
    ``before_decision_logged``: once every vote is in (under 3PC, once every participant
    has also acknowledged PRE_COMMIT), before it logs and announces the outcome; keep it
    down for up to :data:`PATIENCE` seconds, then restart it. One table row of what does
    not depend on timing: the messages the coordinator had sent before the kill, the
    participants' states and held rows while it is down, who announced an outcome, and
    the end."""
    if not isinstance(protocol, str) or protocol not in WITHOUT_THE_COORDINATOR:
        raise bad_choice("protocol", protocol, WITHOUT_THE_COORDINATOR)
    options = {**timing_for(protocol, TIMEOUTS), **WITHOUT_THE_COORDINATOR[protocol]}
    with RealSystem(3, protocol=protocol, restart=False, options=options) as system:
        system.begin("T1", crash=("coordinator", "before_decision_logged"))
        with contextlib.suppress(TxlibError):  # still in doubt: the table says so
            system.wait(lambda s: "coordinator" in s.down and all(
                s.state(p, "T1") in TERMINAL for p in s.participants), PATIENCE,
                "the participants to decide")
        trace = system.trace("T1")
        killed = next((i for i, e in enumerate(trace)
                       if e.kind == "crash" and e.node == "coordinator"), len(trace))
        sent = list(dict.fromkeys(e.message.type for e in trace[:killed]
                                  if e.kind == "send" and e.node == "coordinator"
                                  and e.message is not None))
        down = " / ".join(str(s) for s in states(system, "T1").values())
        held = [p for p, info in system.inspect().items() if info["locked"]]
        announcers = {system.roster.roles[e.node] for e in trace
                      if e.kind == "send" and e.node not in (None, "coordinator")
                      and e.message is not None
                      and e.message.type.removeprefix("DO_") in ("COMMIT", "ABORT")}
        system.restart("coordinator")
        system.settle("T1", LIMIT)
        system.stop_nodes()
        run = system.result("T1")
    return (protocol, ", ".join(sent), down, ", ".join(held) or "none",
            ", ".join(sorted(announcers)) or "nobody", run.outcome,
            " / ".join(str(b) for b in run.balances.values()),
            "; ".join(run.problems()) or "none")


# --- the cost of an orphan (PostgreSQL) ------------------------------------------------

def vacuum_report(conninfo: str, dbname: str, table: str) -> str:
    """VACUUM (VERBOSE) ``table`` and return its line about dead tuples."""
    import psycopg

    notes: list[str] = []
    with psycopg.connect(f"{conninfo} dbname={dbname}", autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notes.append(d.message_primary or ""))
        conn.execute(f"VACUUM (VERBOSE) {table}")
    return next((line.strip() for n in notes for line in n.splitlines()
                 if line.strip().startswith("tuples:")), "; ".join(notes)[:200])


def churn(conninfo: str, dbname: str, rows: int = 200, rounds: int = 3) -> None:
    """Give a table some dead row versions: ``rows`` rows updated ``rounds`` times."""
    import psycopg

    with psycopg.connect(f"{conninfo} dbname={dbname}", autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS churn")
        conn.execute("CREATE TABLE churn(id int PRIMARY KEY, v int) WITH "
                     "(autovacuum_enabled = off)")
        conn.execute("INSERT INTO churn SELECT g, 0 FROM generate_series(1, %s) g", (rows,))
        for _ in range(rounds):
            conn.execute("UPDATE churn SET v = v + 1")


def orphans(conninfo: str) -> list[tuple[Any, ...]]:
    """What an operator runs to find orphans: every prepared transaction, oldest first."""
    import psycopg

    with psycopg.connect(f"{conninfo} dbname=postgres", autocommit=True) as conn:
        return conn.execute(
            "SELECT gid, database, now() - prepared AS waiting, age(transaction) AS xid_age "
            "FROM pg_prepared_xacts ORDER BY prepared").fetchall()


def locks_of_prepared(conninfo: str, dbname: str) -> list[tuple[Any, ...]]:
    """The table locks prepared transactions hold in ``dbname``: pg_locks shows them
    with no process (``pid`` is NULL), under the prepared transaction's id. (The row
    lock itself is kept in the row; a writer that wants it waits on that id.)"""
    import psycopg

    with psycopg.connect(f"{conninfo} dbname={dbname}", autocommit=True) as conn:
        return conn.execute(
            "SELECT p.gid, l.relation::regclass::text, l.mode FROM pg_locks l "
            "JOIN pg_locks x ON x.virtualtransaction = l.virtualtransaction "
            "AND x.locktype = 'transactionid' "
            "JOIN pg_prepared_xacts p ON p.transaction = x.transactionid "
            "WHERE l.relation IS NOT NULL AND l.pid IS NULL AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY 2").fetchall()


def burn_transaction_ids(conninfo: str, count: int = 100) -> None:
    """Run ``count`` small write transactions elsewhere: each takes a transaction id."""
    import psycopg

    with psycopg.connect(f"{conninfo} dbname=postgres", autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS txlib_ticks(n int)")
        for i in range(count):
            conn.execute("INSERT INTO txlib_ticks VALUES (%s)", (i,))
        conn.execute("DROP TABLE txlib_ticks")


def draw(run: Run | RealRun, title: str) -> Picture:
    """A run's space-time diagram, about 300 pixels tall whatever its duration."""
    run = run.as_run() if isinstance(run, RealRun) else run
    return diagram(run, scale=min(60, 300 / max(1, run.end_time)), title=title)


# --- where a commit's time goes ----------------------------------------------------------

def largest_part(parts: Sequence[tuple[str, float, str]]) -> str:
    """Which part of a real 2PC transaction takes the longest, read from the rows of
    :func:`txlib.real.bench.breakdown` (the whole transaction is the row whose share is
    "100%", its parts the indented rows below it). The answer depends on the machine, so
    the lesson prints it from the numbers it just measured rather than stating it."""
    whole = next((ms for _, ms, share in parts if share == "100%"), None)
    pieces = [(what.strip(), ms) for what, ms, _ in parts if what.startswith("  ")]
    if whole is None or not pieces:
        raise TxlibError("expected the rows of txlib.real.bench.breakdown(...): a whole "
                         "transaction (share 100%) and its indented parts")
    what, ms = max(pieces, key=lambda piece: piece[1])
    line = f"the largest part, on this machine: {what}, {ms:.3f} ms of {whole:.3f}"
    if sum(ms for _, ms in pieces) > whole:
        line += ("; each part was timed on its own, so together they can come to more "
                 "than the whole")
    return line


# --- the kill -9 panel ------------------------------------------------------------------

class CrashPanel:
    """Run the transfer with a kill -9 at a chosen point, look at every node's process,
    state and database while the killed node stays down, then restart it."""

    def __init__(self) -> None:
        self.system: RealSystem | None = None
        self.node = widgets.Dropdown(description="kill -9",
                                     options=["coordinator", "p1", "p2", "p3"])
        self.point = widgets.Dropdown(description="at")
        self.node.observe(lambda change: self.list_points(), names="value")
        self.list_points()
        buttons = [self.button("run with this crash", self.run_with_crash, "danger"),
                   self.button("restart", self.restart, "success"),
                   self.button("look again", self.show, "")]
        self.message = widgets.HTML("Choose a node and a point, then run with this crash.")
        self.view = widgets.HTML()
        self.widget = widgets.VBox([widgets.HBox([self.node, self.point]),
                                    widgets.HBox(buttons), self.message, self.view])
        atexit.register(self.close)

    def button(self, label: str, action: Callable[[], None], style: str) -> widgets.Button:
        b = widgets.Button(description=label, button_style=style,
                           layout=widgets.Layout(width="auto"))
        b.on_click(lambda _: self.safely(action))
        return b

    def safely(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:  # shown in the panel, which keeps working
            self.say(f"⚠ {type(exc).__name__}: {exc}", error=True)

    def say(self, text: str, error: bool = False) -> None:
        colour = "#D55E00" if error else "inherit"
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>'

    def list_points(self) -> None:
        role = "coordinator" if self.node.value == "coordinator" else "participant"
        self.point.options = CRASH_POINTS[role]

    def close(self) -> None:
        """Stop the nodes and finish what is in doubt as the coordinator decided (the
        recovery scan), then remove the system's folder."""
        if self.system is not None:
            self.system.stop_nodes()
            self.system.recover(only_down=False)
            self.system.close()
            self.system = None

    def running(self) -> RealSystem:
        if self.system is None:
            raise TxlibError("nothing is running: run with a crash first")
        return self.system

    def run_with_crash(self) -> None:
        self.close()
        node, point = self.node.value, self.point.value
        self.say(f"running T1 with kill -9 of {node} at {point} ...")
        self.system = RealSystem(3, options=TIMEOUTS, restart=False).start()
        self.system.begin("T1", crash=(node, point))
        self.until_quiet()
        if node in self.system.down:
            self.say(f"{node} was killed at {point} and stays down; press restart to "
                     "start it again")
        else:
            self.say(f"{node} never reached {point}")
        self.show()

    def until_quiet(self, quiet: float = 1.2, limit: float = 5.0) -> None:
        """Let the nodes run until no state changed for `quiet` s (at most `limit` s)."""
        system = self.running()

        def node_states() -> dict[str, str | None]:
            return {n: system.state(n, "T1") for n in system.nodes}

        end = time.monotonic() + limit
        seen, since = node_states(), time.monotonic()
        while time.monotonic() < end and time.monotonic() - since < quiet:
            system.pump(0.05)
            if node_states() != seen:
                seen, since = node_states(), time.monotonic()

    def restart(self) -> None:
        if self.system is None or not self.system.down:
            raise TxlibError("no node is down: run with a crash first")
        for node in sorted(self.system.down):
            self.system.restart(node)
        settled = self.system.settle("T1", timeout=30)
        run = self.system.result("T1", trace=False)
        self.say(f"restarted; {'settled' if settled else 'NOT settled after 30 s'}: "
                 f"{run.outcome}, balances {run.balances}, problems: "
                 f"{'; '.join(run.problems()) or 'none'}")
        self.show()

    def row(self, node: str) -> list[Any]:
        """What the panel shows of ``node``: process, state, database row, log, and
        whether a second session could update its row."""
        system = self.running()
        process = "down" if node in system.down else "up"
        state = system.state(node, "T1") or ""
        if node == "coordinator":
            return [node, process, state, "", ", ".join(read_coordinator_log(system.workdir)),
                    ""]
        path = system.workdir / "data" / f"{node}.sqlite"
        (_, balance, locked_by, pending), log = read_database(path)
        held = "NULL" if locked_by is None else locked_by
        return [node, process, state, f"balance {balance}, locked_by {held}, pending {pending}",
                ", ".join(log), second_session(path, node, 50, keep=False)]

    def show(self) -> None:
        if self.system is None:
            self.view.value = ""
            return
        rows = ["<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in self.row(n))
                + "</tr>" for n in self.system.nodes]
        head = "".join(f"<th>{h}</th>" for h in ("node", "process", "state", "database row",
                                                  "log", "a second session's UPDATE"))
        self.view.value = f"<table><tr>{head}</tr>{''.join(rows)}</table>"


# --- exercise: which crash points leave someone in doubt? --------------------------------

def states(system: RealSystem, tx: str) -> dict[str, str | None]:
    return {p: system.state(p, tx) for p in system.participants}


def coordinator_kept_down(point: str, participants: int = 3) -> dict[str, tuple[str, bool]]:
    """Kill -9 the coordinator at ``point`` and do not restart it. Once every participant
    has stopped moving (each is PREPARED or finished, and nothing changed for ``QUIET``
    seconds), each participant's ``(state, row held)``, the row read from its database."""
    if point not in COORDINATOR_POINTS:
        raise TxlibError(f"{point!r} is not a crash point of the coordinator; valid "
                         f"choices: {choices(COORDINATOR_POINTS)}")
    with RealSystem(participants, options=TIMEOUTS, restart=False) as system:
        system.begin("T1", crash=("coordinator", point))
        deadline = time.monotonic() + LIMIT

        def stopped(s: RealSystem) -> bool:
            return "coordinator" in s.down and all(
                v in ("PREPARED", *TERMINAL) for v in states(s, "T1").values())

        while True:
            system.wait(stopped, max(0.1, deadline - time.monotonic()),
                        f"the participants to stop moving after a crash at {point}")
            seen = states(system, "T1")
            quiet_until = time.monotonic() + QUIET
            while time.monotonic() < quiet_until and states(system, "T1") == seen:
                system.pump(quiet_until - time.monotonic())
            if states(system, "T1") == seen and stopped(system):
                break
            if time.monotonic() > deadline:
                raise TxlibError(f"the participants kept changing state after a crash at "
                                 f"{point}: {system.describe()}")
        held = system.inspect()
        system.stop_nodes()
        system.recover(only_down=False)  # finish T1 as the coordinator would, quietly
        return {p: (str(seen[p]), bool(held[p]["locked"])) for p in system.participants}


@cache
def in_doubt_by_point() -> dict[str, dict[str, tuple[str, bool]]]:
    """:func:`coordinator_kept_down` at every crash point of the coordinator (run once)."""
    return {point: coordinator_kept_down(point) for point in COORDINATOR_POINTS}


def _doubtful(observed: dict[str, tuple[str, bool]]) -> list[str]:
    return [p for p, (state, held) in observed.items() if state == "PREPARED" and held]


def _describe(point: str, observed: dict[str, tuple[str, bool]]) -> str:
    by_state: dict[str, list[str]] = {}
    for p, (state, held) in observed.items():
        label = "in doubt (PREPARED, row held)" if state == "PREPARED" and held else state
        by_state.setdefault(label, []).append(p)
    return f"{point}: " + "; ".join(f"{', '.join(ps)} {label}" for label, ps in by_state.items())


def _points(answer: Any) -> set[str]:
    names = [answer] if isinstance(answer, str) else answer
    if isinstance(names, Iterable) and not isinstance(names, (bytes, Mapping)):
        names = list(names)
        for n in names:
            if n in CRASH_POINTS["participant"] and n not in COORDINATOR_POINTS:
                raise TxlibError(f"{n!r} is a participant's crash point; this question is "
                                 f"about the coordinator's: {choices(COORDINATOR_POINTS)}")
    return choice_set(names, COORDINATOR_POINTS, "coordinator crash point",
                      "{'after_decision_logged'} or set()")


@register("real-in-doubt-points")
def _in_doubt_points() -> Exercise:
    def check(answer: Any) -> Feedback:
        chosen = _points(answer)
        observed = in_doubt_by_point()
        right = {point for point, seen in observed.items() if _doubtful(seen)}
        notes = []
        for point in COORDINATOR_POINTS:
            if point in right and point not in chosen:
                notes.append(f"you left out {_describe(point, observed[point])}")
            elif point in chosen and point not in right:
                notes.append(f"nobody waits after {_describe(point, observed[point])}")
        if notes:
            return Feedback(False, "In the real runs, with the coordinator kept down: "
                            + "; and ".join(f"[{note}]" for note in notes)
                            + ". Who had voted YES, and who had heard the decision?")
        lines = [_describe(point, observed[point]) for point in COORDINATOR_POINTS]
        return Feedback(True, (
            f"{', '.join(p for p in COORDINATOR_POINTS if p in right)}. In the real runs, "
            "with the coordinator kept down: " + "; ".join(f"[{line}]" for line in lines) + ". A "
            "participant waits exactly when it has voted YES and has not heard the "
            "decision: in plain 2PC, as here, only the coordinator can then release its "
            "row. With lesson 03's cooperative termination, asking the other "
            "participants frees it when one of them knows the outcome: at "
            "between_prepares p2 and p3 never voted and aborted, at between_commits p1 "
            "committed. Only the two points around the decision leave nobody who knows."))

    return Exercise(
        name="real-in-doubt-points",
        prompt="Crash the real coordinator (kill -9) at each of its named points and keep it "
               "down. After which points is at least one participant left in doubt, "
               "PREPARED with its row held, for as long as the coordinator stays down? "
               "Answer with a set of point names from txlib.real.CRASH_POINTS['coordinator']. "
               "The checker crashes a real coordinator at every point and reads the "
               "participants' databases.",
        checker=check,
        hints=(
            "A participant is in doubt from the moment it votes YES until it hears COMMIT "
            "or ABORT. At each point, who has voted, and who has been told?",
            "The coordinator sends PREPARE to p1, then p2, then p3, and later COMMIT in the "
            "same order. A crash between two sends splits the participants.",
            "between_prepares: p1 got PREPARE and voted YES. Can it abort on its own? What "
            "do p2 and p3, which never got PREPARE, do?",
        ),
        answer="{'between_prepares', 'before_decision_logged', 'after_decision_logged', "
               "'between_commits'}. between_prepares: p1 voted YES and waits, while p2 and p3 "
               "never got PREPARE and abort on their prepare timer. before_decision_logged "
               "and after_decision_logged: every participant voted YES and nobody was told "
               "(whether the decision reached the disk makes no difference to them). "
               "between_commits: p1 committed, p2 and p3 wait. Only after_commits_sent "
               "leaves nobody waiting: every COMMIT was handed to the kernel before the "
               "kill, and the kernel delivers it.",
        example={"between_prepares", "before_decision_logged", "after_decision_logged",
                 "between_commits"},
        wrong=(({"before_decision_logged", "after_decision_logged", "between_commits"},
                "you left out"),
               ({"between_prepares", "before_decision_logged", "after_decision_logged",
                 "between_commits", "after_commits_sent"}, "nobody waits after")),
    )


# --- exercise: fsyncs per committed transfer ---------------------------------------------

FSYNC_SIZES = (2, 3, 4)


def fsyncs_of_transfers(participants: int, transfers: int) -> dict[str, int]:
    """Each node's fsyncs, as the nodes count them, over ``transfers`` committed transfers
    on one fresh system (one after the other)."""
    if transfers == 1:
        run = run_transfer(participants)
        if run.outcome != "committed" or run.problems():
            raise TxlibError(f"the measuring run did not commit cleanly: {run.summary()}")
        return dict(run.fsyncs)
    with RealSystem(participants) as system:
        for i in range(1, transfers + 1):
            system.begin(f"T{i}")
            if not system.settle(f"T{i}", LIMIT):
                raise TxlibError(f"T{i} did not finish: {system.describe()}")
        system.stop_nodes()
        run = system.result(f"T{transfers}", trace=False)
        if run.outcome != "committed" or run.problems():
            raise TxlibError(f"the measuring run did not commit cleanly: {run.summary()}")
        return dict(run.fsyncs)


@cache
def measured_fsyncs(participants: int) -> tuple[dict[str, int], dict[str, int]]:
    """``(first, each_later)``: each node's fsyncs for the first committed transfer of a
    fresh system, and for each transfer after it (two transfers minus one)."""
    first = fsyncs_of_transfers(participants, 1)
    two = fsyncs_of_transfers(participants, 2)
    return first, {n: two[n] - first[n] for n in two}


def _by_node(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {c}" for n, c in counts.items())


def _per_transfer(measured: tuple[dict[str, int], dict[str, int]]) -> int:
    return sum(measured[1].values())


def _fsyncs(value: Any, n: int) -> int:
    return whole_number(value, f"for n={n}, the number of fsyncs your function returned")


@register("real-fsyncs-per-commit")
def _fsyncs_per_commit() -> Exercise:
    def check(answer: Any) -> Feedback:
        fn = function(answer, "of n (the number of participants) that returns a whole "
                              "number, e.g. lambda n: 3 * n")
        wrong = next(wrong_predictions(fn, FSYNC_SIZES, measured_fsyncs, _per_transfer,
                                       _fsyncs), None)
        if wrong is not None:
            n, predicted, (first, later) = wrong
            total = sum(later.values())
            if predicted == sum(first.values()):
                return Feedback(False, (
                    f"for N={n} you predicted {predicted}, which is what the FIRST transfer "
                    f"of a fresh system asks for ({_by_node(first)}). Every later transfer "
                    f"asks for {total}. What does the coordinator fsync only once, when it "
                    "creates its log file?"))
            return Feedback(False, (
                f"for N={n} you predicted {predicted}; each transfer on a running system "
                f"asks for {total} fsyncs. Which records does 2PC force, on which node? "
                "(One forced record is one fsync.)"))
        n = FSYNC_SIZES[-1]
        first, later = measured_fsyncs(n)
        return Feedback(True, (
            f"your formula matches the real nodes for N = {FSYNC_SIZES[0]} to {n}. For "
            f"N={n}, each transfer: {_by_node(later)}: PREPARED and COMMITTED at each "
            "participant (one SQLite commit with synchronous=FULL each, one fsync of its "
            "write-ahead log) and the coordinator's COMMIT; END is lazy and reaches the disk "
            f"with the next COMMIT. The first transfer of a fresh system asks for "
            f"{sum(first.values())}: the coordinator also fsyncs its folder once, when it "
            "creates its log file, so that the file itself survives a crash."))

    return Exercise(
        name="real-fsyncs-per-commit",
        prompt="A running real system with N SQLite participants commits one transfer after "
               "another. How many fsyncs does each committed transfer cost, counting every "
               "node? Answer with a function of n; the checker counts the fsyncs that real "
               "nodes ask for, for N = 2 to 4.",
        checker=check,
        hints=(
            "One forced log record is one fsync. Which records does 2PC force (lesson 02)?",
            "A lazy record costs no fsync of its own: it reaches the disk with the next "
            "forced write.",
            "Per participant: PREPARED and COMMITTED. At the coordinator: COMMIT.",
        ),
        answer="lambda n: 2 * n + 1: each participant forces PREPARED and COMMITTED (one "
               "fsync each: SQLite commits the row change and the log record together and "
               "fsyncs its write-ahead log), the coordinator forces COMMIT, and END is lazy. "
               "These are lesson 02's 2N+1 forced writes, now real fsyncs. The first transfer "
               "of a fresh system costs one more: the coordinator fsyncs the folder of the "
               "log file it has just created.",
        example=lambda n: 2 * n + 1,
        wrong=((lambda n: 2 * n + 2, "the first transfer"),
               (lambda n: 3 * n + 1, "which records does 2pc force")),
    )

"""The command line: ``python -m txlib list``, ``python -m txlib run TARGET`` and
``python -m txlib explore TARGET``.

Bad arguments print one line, ``txlib: error: ...``, to stderr and exit with code 2.
A run's exit code does not depend on its outcome: a blocked run is a successful simulation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from .engine.config import MAX_NUMBER
from .engine.faults import (
    FAULT_KINDS,
    MESSAGE_FAULTS,
    Fault,
    Trigger,
    crash,
    delay,
    drop,
    duplicate,
    fail_step,
    heal,
    partition,
    recover,
    slow,
    vote_no,
)
from .errors import TxlibError, bad_choice, choices
from .explorer.search import Exploration, Finding
from .explorer.worlds import EXPLORE_KEYWORDS, default_participants, explore
from .explorer.worlds import TIMEOUTS as EXPLORE_TIMEOUTS
from .presets import NAMED_SCENARIOS
from .protocols import PROTOCOLS, get_protocol
from .simulation.run import Run
from .simulation.scenario import (
    MAX_JSON_CHARS,
    MAX_RECORDED_STEPS,
    Scenario,
    participant_names,
)
from .viz.console import DEFAULT_ROWS

if TYPE_CHECKING:
    from rich.console import Console

PROG = "python -m txlib"
ERROR_PREFIX = "txlib: error:"
NON_TTY_WIDTH = 120

# --- the --fault syntax ------------------------------------------------------------------
FAULT_USAGE: dict[str, str] = {
    "crash": "crash:NODE[@TIMING]",
    "recover": "recover:NODE@TIMING",
    "partition": "partition:A,B|C,D[@TIMING]",
    "heal": "heal@TIMING",
    "vote_no": "vote_no:NODE[@TIMING]",
    "slow": "slow:NODE=BY[@TIMING]",
    "drop": "drop[:TYPE][@FILTERS]",
    "duplicate": "duplicate[:TYPE][@FILTERS]",
    "delay": "delay:[TYPE]=BY[@FILTERS]",
    "fail_step": "fail_step:STEP[@KEYS]",
}

FAULT_HELP = """\
fault specs (--fault SPEC, repeatable):
  crash:NODE[@TIMING]             crash NODE (with no timing it is down from the start)
  recover:NODE@TIMING             restart NODE from its durable log
  partition:A,B|C,D[@TIMING]      split the network into groups ('|' between groups,
                                  ',' between nodes); nodes in no group form one more
  heal@TIMING                     end the partition
  vote_no:NODE[@TIMING]           participant NODE votes NO (from TIMING on, if given)
  slow:NODE=BY[@TIMING]           every message NODE sends takes BY extra time
  drop[:TYPE][@FILTERS]           lose the next matching message
  duplicate[:TYPE][@FILTERS]      deliver the next matching message twice
  delay:[TYPE]=BY[@FILTERS]       hold the next matching message BY extra time
  fail_step:STEP[@KEYS]           saga step STEP fails (KEYS: times=N|all, default
                                  all; compensation=yes fails its compensation; TIMING)
TIMING is one of  step=K  (right after scheduler step K; 0 is before the first),
  time=T  (at simulated time T)  or  when=TRIGGER  (the first time TRIGGER happens:
  'NODE logs RECORD', 'NODE sends TYPE [to NODE]' or 'NODE receives TYPE [from NODE]').
FILTERS are KEY=VALUE items separated by ',' or '@': src=NODE, dst=NODE,
  count=N|all (how many messages; default 1), by=BY (delay), and one TIMING (when the
  fault turns on). TYPE is a message type such as COMMIT; omit it or use * for any.

examples:
  %(prog)s 2pc --fault "crash:coordinator@when=coordinator logs COMMIT"
  %(prog)s 2pc-coordinator-crash-blocks --fault recover:coordinator@time=300
  %(prog)s 3pc --fault "partition:coordinator,p1|p2,p3@when=coordinator sends PRE_COMMIT to p1"
  %(prog)s 2pc --fault drop:YES@src=p2 --fault delay:COMMIT=100 --fault slow:p1=50
  %(prog)s 2pc --option cooperative=true --option loss=0.1 --seed 7 --json
"""

_TIMING_KEYS = ("step", "time", "when")
_FILTER_KEYS = ("src", "dst", "count")
_WHOLE = re.compile(r"^\d+$")


def _whole(value: str, what: str) -> int:
    value = value.strip()
    if re.match(r"^-\d+$", value):
        raise TxlibError(f"{what} must be 0 or more, got {value}")
    if not _WHOLE.match(value):
        raise TxlibError(f"{what} must be a whole number, got {value[:40]!r}")
    if len(value) > 18:
        raise TxlibError(f"{what} must be a whole number of at most 18 digits, "
                         f"got one of {len(value)} digits")
    return int(value)


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise TxlibError(f"{what} is missing")
    if any(c.isspace() for c in value):
        raise TxlibError(f"{what} must be a node name without spaces, got {value!r}")
    return value


def _qualifiers(kind: str, text: str) -> dict[str, str]:
    """``"src=p2, count=all"`` -> ``{"src": "p2", "count": "all"}``, checking the keys."""
    valid: tuple[str, ...] = _TIMING_KEYS
    if kind in MESSAGE_FAULTS:
        valid += _FILTER_KEYS + (("by",) if kind == "delay" else ())
    if kind == "fail_step":
        valid += ("times", "compensation")
    out: dict[str, str] = {}
    for item in re.split(r"[,@]", text):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or not key:
            raise TxlibError(f"{item.strip()!r} is not KEY=VALUE; valid keys: {choices(valid)}")
        if key not in valid:
            raise bad_choice(f"key for {kind}", key, valid)
        if key in out:
            raise TxlibError(f"{key}= is given twice")
        out[key] = value.strip()
    timings = [k for k in _TIMING_KEYS if k in out]
    if len(timings) > 1:
        raise TxlibError(f"give only one of step=, time= or when=, got {', '.join(timings)}")
    return out


def _timing(quals: dict[str, str]) -> dict[str, Any]:
    if "step" in quals:
        return {"at_step": _whole(quals["step"], "step")}
    if "time" in quals:
        return {"at_time": _whole(quals["time"], "time")}
    if "when" in quals:
        return {"when": Trigger.parse(quals["when"])}
    return {}


def _message_fault(kind: str, args: str, quals: dict[str, str]) -> Fault:
    type_text, eq, by_text = args.partition("=")
    type_ = type_text.strip()
    if type_ and not re.match(r"^(\*|[A-Za-z0-9_.-]+)$", type_):
        raise TxlibError(f"message type must be one word such as COMMIT, got {type_!r}")
    by: int | None = None
    if eq or "by" in quals:
        if kind != "delay":
            raise TxlibError(f"{kind} takes no '=BY'")
        if eq and "by" in quals:
            raise TxlibError("give BY once: either delay:TYPE=BY or by=BY")
        by = _whole(by_text if eq else quals["by"], "BY")
    elif kind == "delay":
        raise TxlibError("delay needs how long: delay:TYPE=BY")
    filters: dict[str, Any] = {k: _name(quals[k], k) for k in ("src", "dst") if k in quals}
    if "count" in quals:
        count = quals["count"]
        filters["count"] = None if count.lower() == "all" else _whole(count, "count")
    pattern = {"type": None if type_ in ("", "*") else type_, **filters, **_timing(quals)}
    if kind == "delay":
        return delay(by or 0, **pattern)
    return drop(**pattern) if kind == "drop" else duplicate(**pattern)


def _build(kind: str, args: str, has_args: bool, quals: dict[str, str]) -> Fault:
    if kind in MESSAGE_FAULTS:
        return _message_fault(kind, args, quals)
    if kind == "heal":
        if has_args:
            raise TxlibError("heal takes no ':' part")
        if not quals:
            raise TxlibError("heal needs a time: add @step=K, @time=T or @when=TRIGGER")
        return heal(**_timing(quals))
    if kind == "partition":
        groups = [[_name(n, "each node of a partition group") for n in g.split(",")]
                  for g in args.split("|")]
        return partition(*groups, **_timing(quals))
    if kind == "slow":
        node, eq, by = args.partition("=")
        if not eq:
            raise TxlibError("slow needs how long: slow:NODE=BY")
        return slow(_name(node, "NODE"), _whole(by, "BY"), **_timing(quals))
    if kind == "fail_step":
        times_text = quals.get("times", "all")
        times = None if times_text.lower() == "all" else _whole(times_text, "times")
        comp = quals.get("compensation", "no").lower()
        if comp not in ("yes", "no", "true", "false"):
            raise TxlibError(f"compensation= must be yes or no, got {comp!r}")
        return fail_step(_name(args, "STEP"), times=times,
                         compensation=comp in ("yes", "true"), **_timing(quals))
    node = _name(args, "NODE")
    if kind == "vote_no":
        return vote_no(node, **_timing(quals))
    if kind == "recover":
        if not quals:
            raise TxlibError("recover needs a time: add @step=K, @time=T or @when=TRIGGER")
        return recover(node, **_timing(quals))
    return crash(node, **_timing(quals))


def parse_fault(spec: str) -> Fault:
    """Read one ``--fault`` spec, e.g. ``"crash:coordinator@when=coordinator logs COMMIT"``.

    The syntax is ``KIND[:ARGS][@KEY=VALUE,...]``; see :data:`FAULT_HELP`. A bad spec raises
    TxlibError naming the bad part and the valid kinds or keys.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise TxlibError(f"empty fault spec; valid kinds: {choices(FAULT_KINDS)}")
    head, at, tail = spec.partition("@")
    kind_text, colon, args = head.partition(":")
    kind = kind_text.strip().lower().replace("-", "_")
    if kind not in FAULT_KINDS:
        raise TxlibError(
            f"bad fault {spec!r}: unknown fault kind {kind_text.strip()!r}; "
            f"valid kinds: {choices(FAULT_KINDS)}"
        )
    try:
        if at and not tail.strip():
            raise TxlibError("nothing after '@'")
        quals = _qualifiers(kind, tail) if at else {}
        return _build(kind, args.strip(), bool(colon), quals)
    except TxlibError as exc:
        raise TxlibError(f"bad fault {spec!r}: {exc}; write {FAULT_USAGE[kind]}") from None


def parse_option(text: str) -> tuple[str, Any]:
    """``"loss=0.1"`` -> ``("loss", 0.1)``: the value is JSON, or else a plain string."""
    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq or not key or not key.isidentifier():
        raise TxlibError(f"bad option {text!r}: write KEY=VALUE, e.g. loss=0.1 or cooperative=true")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value.strip()
    except RecursionError:
        raise TxlibError(f"bad option {key!r}: its value is nested too deeply to be an "
                         "option") from None
    except ValueError:  # a number with more digits than Python reads (over 4,300)
        raise TxlibError(f"bad option {key!r}: its value is a number too long to read "
                         f"(a whole-number option is at most {MAX_NUMBER:,})") from None


# --- argument parsing ---------------------------------------------------------------------
class UsageError(Exception):
    """Raised instead of argparse's print-usage-and-exit, so main prints one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for ``list`` and ``run``."""
    parser = _Parser(
        prog=PROG,
        description="A deterministic simulator of distributed-transaction protocols "
                    "(2PC, 3PC, Paxos Commit, sagas, TCC), for teaching.",
        epilog="exit codes: 0 when the simulation or search ran (whatever it found), "
               "2 for bad arguments. See '%(prog)s run --help' and '%(prog)s explore "
               "--help' for their options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    lst = commands.add_parser("list", help="list the named scenarios",
                              description="List the named scenarios with their descriptions.")
    lst.add_argument("--protocol", metavar="P", help="only the scenarios of protocol P")
    run = commands.add_parser(
        "run", help="simulate a scenario or protocol and show its trace and summary",
        description=f"Simulate a named scenario (see 'list') or a protocol "
                    f"({', '.join(PROTOCOLS)}) and print a step-by-step trace and a summary.",
        epilog=FAULT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _scenario_arguments(run, seed=True)
    run.add_argument("--json", action="store_true",
                     help="print the scenario and the result as JSON, nothing else")
    run.add_argument("--limit", type=_count(0), metavar="N",
                     help=f"show at most N trace rows (default {DEFAULT_ROWS}; with --step, "
                          "every event)")
    run.add_argument("--step", action="store_true",
                     help="show one event at a time, waiting for Enter (q skips to the summary)")
    run.add_argument("--svg", metavar="FILE", help="write the space-time diagram to FILE")
    search = commands.add_parser(
        "explore", help="check every interleaving of a scenario or protocol (model checking)",
        description=f"Explore every order of events of a named scenario (see 'list') or a "
                    f"protocol ({', '.join(PROTOCOLS)}) and every fault the budget allows, "
                    "breadth first: print the state space's size, every invariant broken "
                    "with a shortest path to it, and the blocking states.",
        epilog=FAULT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _scenario_arguments(search, seed=False)
    search.add_argument("--max-crashes", type=_count(0), default=1, metavar="N",
                        help="crashes the search may make (default 1)")
    search.add_argument("--max-drops", type=_count(0), default=0, metavar="N",
                        help="messages it may lose (default 0)")
    search.add_argument("--partitions", action="store_true",
                        help="let it split the network in two and heal it")
    search.add_argument("--recoveries", action="store_true",
                        help="let a crashed node restart from its log")
    search.add_argument("--timeouts", choices=EXPLORE_TIMEOUTS, default="synchronous",
                        help="synchronous (default): a timer fires only when nothing is in "
                             "flight; asynchronous: at any moment")
    search.add_argument("--max-states", type=_count(1), metavar="N",
                        help="stop after N distinct states")
    search.add_argument("--max-seconds", type=_seconds, metavar="S",
                        help="stop after S seconds")
    search.add_argument("--max-depth", type=_count(0), metavar="N",
                        help="explore at most N steps deep")
    search.add_argument("--all", action="store_true",
                        help="go on after the first violation (a shortest one per invariant)")
    search.add_argument("--json", action="store_true",
                        help="print the result as JSON, nothing else")
    return parser


def _scenario_arguments(command: argparse.ArgumentParser, *, seed: bool) -> None:
    """The arguments that pick a scenario and change it (``run`` and ``explore``)."""
    command.add_argument("target", nargs="?", metavar="TARGET",
                         help="a named scenario (see 'list') or a protocol: "
                              + ", ".join(PROTOCOLS))
    command.add_argument("--scenario-file", metavar="F",
                         help="load the scenario from JSON file F instead of TARGET")
    who = command.add_mutually_exclusive_group()
    who.add_argument("--participants", type=int, metavar="N",
                     help="N participants p1..pN (overrides the scenario's)")
    who.add_argument("--names", metavar="A,B,C", help="participants with these names")
    if seed:
        command.add_argument("--seed", type=int, metavar="S", help="random seed (overrides)")
    command.add_argument("--fault", action="append", default=[], metavar="SPEC",
                         help="add a fault to the plan (repeatable; syntax below)")
    command.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="set a protocol or network option; VALUE is JSON or a string "
                              "(repeatable), e.g. cooperative=true, loss=0.1, tx=TX-9")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number, got {text!r}")
    return value


# --- commands -----------------------------------------------------------------------------
def make_console() -> Console:
    """A rich Console; a fixed width when not writing to a terminal, for stable output."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=NON_TTY_WIDTH)
    return console


def cmd_list(args: argparse.Namespace) -> int:
    """Print a table of the named scenarios."""
    from rich.table import Table
    from rich.text import Text

    if args.protocol is not None:
        get_protocol(args.protocol)
    table = Table(title="named scenarios (python -m txlib run NAME)", title_justify="left")
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("protocol", no_wrap=True)
    table.add_column("description")
    for name, s in NAMED_SCENARIOS.items():
        if args.protocol in (None, s.protocol):
            table.add_row(Text(name), Text(s.protocol), Text(s.description))
    console = make_console()
    console.print(table)
    console.print(Text("protocols (python -m txlib run PROTOCOL): " + "; ".join(
        f"{name} = {p.title}" for name, p in PROTOCOLS.items())))
    return 0


def load_scenario(args: argparse.Namespace) -> Scenario:
    """The scenario named by TARGET or --scenario-file, with the overrides applied."""
    if args.scenario_file and args.target:
        raise TxlibError("give either TARGET or --scenario-file, not both")
    if args.scenario_file:
        try:
            with open(args.scenario_file, encoding="utf-8") as f:
                text = f.read(MAX_JSON_CHARS + 1)  # never more: /dev/zero is a file too
        except (OSError, UnicodeDecodeError) as exc:
            raise TxlibError(f"cannot read scenario file {args.scenario_file!r}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
        scenario = Scenario.from_json(text)
    elif args.target in NAMED_SCENARIOS:
        scenario = NAMED_SCENARIOS[args.target]
    elif args.target in PROTOCOLS:
        scenario = Scenario(protocol=args.target)
    elif args.target is None:
        raise TxlibError("give a TARGET: a named scenario (see 'list') or a protocol, "
                         f"one of {choices(PROTOCOLS)}")
    else:
        raise bad_choice("scenario or protocol", args.target, [*PROTOCOLS, *NAMED_SCENARIOS])
    changes: dict[str, Any] = {}
    if args.participants is not None:
        changes["participants"] = participant_names(args.participants)
    elif args.names is not None:
        changes["participants"] = participant_names(args.names.split(","))
    if getattr(args, "seed", None) is not None:
        changes["seed"] = args.seed
    if args.option:
        changes["options"] = dict(parse_option(o) for o in args.option)
    if changes:
        scenario = scenario.replace(**changes)
    return scenario.with_faults(*(parse_fault(f) for f in args.fault))


def result_dict(run: Run) -> dict[str, Any]:
    """The result of ``run`` as JSON-ready data."""
    return {
        "outcome": run.outcome,
        "decisions": run.decisions,
        "down": sorted(run.down),
        "steps": run.steps,
        "end_time": run.end_time,
        "stopped_by": run.stopped_by,
        "metrics": asdict(run.metrics),
        "violations": [asdict(v) for v in run.violations],
        "unfired_faults": [{"fault": f.to_dict(), "description": f.describe(), "reason": why}
                           for f, why in run.unfired_faults],
    }


def _svg_writer(path: str | None) -> Callable[[Run], None] | None:
    """A function writing the space-time diagram to ``path`` (checked before the run)."""
    if path is None:
        return None
    try:
        from .viz.spacetime import MAX_DRAWN_EVENTS, spacetime_svg
    except ImportError:
        raise TxlibError("--svg needs txlib.viz.spacetime, which is not available") from None

    def write(run: Run) -> None:
        if len(run.trace) > MAX_DRAWN_EVENTS:
            raise TxlibError(f"the run has {len(run.trace):,} events, too many to draw "
                             f"(--svg draws at most {MAX_DRAWN_EVENTS:,}): shorten it, e.g. "
                             "--option horizon=... or --option max_steps=...")
        try:
            Path(path).write_text(spacetime_svg(run.trace), encoding="utf-8")
        except OSError as exc:
            raise TxlibError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    return write


def step_through(run: Run, console: Console, limit: int | None, stdin: IO[str]) -> None:
    """Print one event at a time, waiting for a line on ``stdin`` between events.

    At end of input it prints the rest without waiting; ``q`` skips to the summary.
    """
    from rich.text import Text

    from .viz.console import event_table, summary_panel

    events = run.trace[:limit]
    try:
        interactive = stdin.isatty() and console.is_terminal
        readable = True
    except (AttributeError, ValueError):  # no stdin (closed, or None): print it all
        interactive = readable = False
    console.print(event_table(run, [], header=True))
    waiting, shown = True, 0
    for event in events:
        console.print(event_table(run, [event], header=False))
        shown += 1
        if not waiting or shown == len(events):
            continue
        if interactive:
            console.file.write("  [Enter: next event, q: skip to the summary] ")
            console.file.flush()
        line = stdin.readline() if readable else ""
        if interactive:
            console.file.write("\x1b[1A\x1b[2K")  # erase the prompt line
        if not line:
            waiting = False
        elif line.strip().lower() == "q":
            break
    if shown < len(run.trace):
        console.print(Text(f"... {len(run.trace) - shown} more event(s) not shown",
                           style="italic"))
    console.print(summary_panel(run))


def _check_recordable(scenario: Scenario) -> None:
    """A TxlibError, in the command line's terms, if the scenario's max_steps is more
    than a recorded run keeps (the command line records every run it shows)."""
    config = scenario.protocol_entry.make_config(scenario.participants, scenario.options)
    if config.max_steps > MAX_RECORDED_STEPS:
        raise TxlibError(
            f"option max_steps is {config.max_steps:,}, but the command line records every "
            f"run and a recorded run keeps at most {MAX_RECORDED_STEPS:,} steps; give "
            f"--option max_steps=N with N at most {MAX_RECORDED_STEPS:,}")


def cmd_run(args: argparse.Namespace) -> int:
    """Simulate and print the trace and summary (or JSON)."""
    if args.json and args.step:
        raise TxlibError("--step and --json cannot be combined")
    scenario = load_scenario(args)
    _check_recordable(scenario)
    write_svg = _svg_writer(args.svg)
    run = scenario.run()
    if write_svg is not None:
        write_svg(run)
    if args.json:
        data = {"scenario": scenario.to_dict(), "result": result_dict(run)}
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    from rich.text import Text

    from .viz.console import summary_panel, trace_table

    console = make_console()
    if args.step:
        step_through(run, console, args.limit, sys.stdin)
    else:
        limit = DEFAULT_ROWS if args.limit is None else args.limit
        console.print(trace_table(run, limit=limit))
        if len(run.trace) > limit:  # the table's last row says how many it left out
            console.print(Text("(--limit N shows more rows)"))
        console.print(summary_panel(run))
    if args.svg:
        console.print(Text(f"wrote the space-time diagram to {args.svg}"))
    return 0


# explore's keywords the command line sets, each with its --flag
_SEARCH_FLAGS = ("participants", "max_crashes", "max_drops", "partitions", "recoveries",
                 "timeouts", "max_states", "max_seconds", "max_depth")


def cmd_explore(args: argparse.Namespace) -> int:
    """Explore and print the summary and each finding's shortest path (or JSON)."""
    budget: dict[str, Any] = {
        "max_crashes": args.max_crashes, "max_drops": args.max_drops,
        "partitions": args.partitions, "recoveries": args.recoveries,
        "timeouts": args.timeouts, "max_states": args.max_states,
        "max_seconds": args.max_seconds, "max_depth": args.max_depth,
        "stop_on_violation": not args.all, "progress": None if not args.json else False}
    options = dict(parse_option(o) for o in args.option)
    _check_search_options(options)  # a protocol's or a scenario's
    if args.target in PROTOCOLS and not (args.scenario_file or args.fault):
        # a protocol by itself: the explorer's own defaults (two participants for a
        # commit protocol: the state space grows fast)
        who: Any = None
        if args.participants is not None:
            who = args.participants
        elif args.names is not None:
            who = args.names.split(",")
        found = explore(args.target, participants=who, **budget, **options)
    else:
        if args.target in PROTOCOLS and args.participants is None and args.names is None:
            # as for a protocol alone: the search's own default participants
            args.names = ",".join(default_participants(get_protocol(args.target))) or None
        found = explore(load_scenario(args), **budget)
    if args.json:
        print(json.dumps(exploration_dict(found), indent=2, sort_keys=True, default=str))
        return 0
    from rich.text import Text

    console = make_console()
    console.print(Text(found.summary()))
    for finding in found.findings:
        console.print(Text(""))
        console.print(Text(finding.text()))
    return 0


def _check_search_options(options: Mapping[str, Any]) -> None:
    """A TxlibError for an --option that names a setting of the search, not of the
    protocol, saying which flag sets it (if one does)."""
    for key in options:
        if key in EXPLORE_KEYWORDS:
            flag = "--" + key.replace("_", "-")
            raise TxlibError(f"--option {key}=... sets the search, not the protocol: "
                             + (f"give {flag} instead" if key in _SEARCH_FLAGS else
                                "the command line does not set it (see txlib.explore)"))


def exploration_dict(found: Exploration) -> dict[str, Any]:
    """What a search found, as JSON-ready data."""
    def finding(f: Finding) -> dict[str, Any]:
        return {"invariant": f.invariant, "reason": f.reason, "depth": f.depth,
                "path": list(f.labels)}
    return {
        "model": found.model, "settings": dict(found.settings),
        "states": found.states, "transitions": found.transitions, "depth": found.depth,
        "complete": found.complete, "stopped_by": found.stopped_by,
        "violations": [finding(f) for f in found.violations],
        "blocking": None if found.blocking is None else finding(found.blocking),
        "blocking_states": found.blocking_states,
    }


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "list": cmd_list, "run": cmd_run, "explore": cmd_explore}


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so Python's final flush of unwritable output does not
    print a second traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _fail(message: str, code: int = 2) -> int:
    print(f"{ERROR_PREFIX} {' '.join(str(message).split())}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad arguments)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            return _fail(f"choose a command: list, run or explore (see '{PROG} --help')")
        code = _COMMANDS[args.command](args)
        sys.stdout.flush()  # a write error (a full disk) is reported here, not at exit
        return code
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except (UsageError, TxlibError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:  # e.g. the output is a full disk (/dev/full)
        _quiet_stdout()
        return _fail(f"cannot write the output: {exc.strerror or exc}")

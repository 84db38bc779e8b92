"""A scenario is everything a run depends on: protocol, participants, seed, options, faults.

It round-trips through JSON, and the same scenario always replays to a byte-identical
trace: that is what makes runs shareable and lessons reproducible.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from ..engine.faults import MAX_FAULTS, Fault, Trigger
from ..engine.node import Role, declared_records
from ..engine.plain import MAX_INT
from ..engine.roster import MAX_PARTICIPANTS, Roster
from ..engine.world import World
from ..errors import TxlibError, bad_choice, choices, shown, suggestion
from ..protocols import COORDINATOR, PROTOCOLS, Protocol, get_protocol
from .run import Run, history_of_world, made, node_values
from .setup import Setup, check_key, checked, keep_checked, options_json, options_of, setup_of

MAX_JSON_CHARS = 1_000_000  # a scenario is a few kB; this is a generous cap
# A recorded step keeps its events and the acting node's volatile state: a few hundred
# bytes with a few nodes, several kB with dozens (a run also stops at its memory budget,
# see txlib.engine.memory).
MAX_RECORDED_STEPS = 200_000
RESERVED_NAMES = (COORDINATOR, "any")
_JSON_KEYS = ("name", "description", "protocol", "participants", "seed", "faults", "options")


def participant_names(participants: int | Sequence[str]) -> tuple[str, ...]:
    """``3 -> ("p1", "p2", "p3")``; a list of names is checked and kept."""
    if isinstance(participants, bool):
        raise TxlibError(f"participants must be a count or a list of names, got {participants!r}")
    if isinstance(participants, int):
        if not 1 <= participants <= MAX_PARTICIPANTS:
            raise TxlibError(
                f"participants must be between 1 and {MAX_PARTICIPANTS}, got {participants}"
            )
        return _numbered(participants)
    if isinstance(participants, str) or not isinstance(participants, Sequence):
        raise TxlibError(f"participants must be a count or a list of names, got {participants!r}")
    names = tuple(participants)
    if not 1 <= len(names) <= MAX_PARTICIPANTS:
        raise TxlibError(
            f"give between 1 and {MAX_PARTICIPANTS} participant names, got {len(names)}"
        )
    for n in names:
        if not isinstance(n, str) or not n.strip() or any(c.isspace() for c in n):
            raise TxlibError(f"participant names must be words without spaces, got {shown(n)}")
        if not n.isprintable():  # a control character breaks the diagrams and terminals
            raise TxlibError(f"participant names must be words without spaces or control "
                             f"characters, got {shown(n)}")
        if n in RESERVED_NAMES:
            raise TxlibError(f"participant name {n!r} is reserved; reserved: {RESERVED_NAMES}")
    if len(set(names)) != len(names):
        raise TxlibError(f"participant names must be unique, got {list(names)}")
    return names


@functools.cache
def _numbered(count: int) -> tuple[str, ...]:
    """``("p1", ..., "p<count>")``, made once per count (at most MAX_PARTICIPANTS)."""
    return tuple(f"p{i}" for i in range(1, count + 1))


def _check_faults(faults: Iterable[Any]) -> tuple[Fault, ...]:
    if type(faults) is tuple and not faults:
        return ()
    if isinstance(faults, Fault):
        return (faults,)
    if isinstance(faults, (str, bytes, dict)) or not isinstance(faults, Iterable):
        raise TxlibError(
            f"faults must be a list of faults made with txlib.crash(...), txlib.drop(...), "
            f"...; got {faults!r}"
        )
    out: list[Fault] = []
    for f in faults:
        if not isinstance(f, Fault):
            raise TxlibError(
                f"a fault must be made with txlib.crash(...), txlib.drop(...), ...; got {f!r}"
            )
        if len(out) == MAX_FAULTS:  # also stops an endless iterator
            raise TxlibError(f"a scenario plans at most {MAX_FAULTS:,} faults, got more; "
                             "plan fewer (a fault with count=None repeats, and one without "
                             "a time applies all run long)")
        out.append(f)
    return tuple(out)


def _check_trigger_node(f: Fault, when: Trigger, roles: dict[str, Role]) -> None:
    """A TxlibError if ``when`` names a node (or peer) whose role never writes the
    record, or never receives the message type, it names: it would never fire."""
    node = roles.get(when.node)
    if when.action == "logs" and node is not None and node.record_types is not None:
        own = sorted(node.record_types)
        if when.what not in own:
            raise TxlibError(f"fault '{f.describe()}' names log record {when.what!r}, which "
                             f"{when.node} ({node.name}) never writes"
                             f"{suggestion(when.what, own)}; valid choices: {choices(own)}")
        return
    receiver = {"receives": when.node, "sends": when.peer}.get(when.action)
    role = roles.get(receiver) if receiver is not None else None
    if role is not None and role.dispatch is not None and when.what not in role.dispatch:
        handled = sorted(role.dispatch)
        raise TxlibError(f"fault '{f.describe()}' names message type {when.what!r}, which "
                         f"{receiver} ({role.name}) never receives"
                         f"{suggestion(when.what, handled)}; valid choices: {choices(handled)}")


@dataclass(frozen=True)
class Scenario:
    """A protocol run, described as data. Build with :func:`txlib.scenario` or directly."""

    protocol: str
    participants: tuple[str, ...] = ()  # () = the protocol's default
    seed: int = 0
    faults: tuple[Fault, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        with self._resolving():
            self._check_all()

    def _check_all(self) -> None:
        """Check every field, and set the scenario up (see :meth:`_setup_of`)."""
        proto = get_protocol(self.protocol)
        if not isinstance(self.options, dict):
            raise TxlibError(f"options must be a dict of option names, got {self.options!r}")
        for name in self.options:
            if not isinstance(name, str):
                raise TxlibError(f"option names must be strings, got {shown(name)}; valid "
                                 f"choices: {choices(proto.config_class.option_names())}")
        options = options_json(self.options)
        d = self.__dict__  # the fields are set here, before anyone sees the scenario
        d["_options_json"] = options
        d["options"] = options_of(options)
        key = check_key(proto, self.participants, options, self.faults)
        done = checked(key)
        if done is not None:  # the same scenario but for its seed passed every check
            d["participants"], d["faults"], d["_setup"] = done
            self._check_fields()
            return
        if self.participants == ():  # the dataclass default: the protocol's own
            object.__setattr__(self, "participants", proto.default_participants(self.options))
        object.__setattr__(self, "participants", participant_names(self.participants))
        proto.check_participants(self.participants, self.options)
        object.__setattr__(self, "faults", _check_faults(self.faults))
        self._check_fields()
        setup = self._setup_of(proto)  # validate now, not mid-run
        nodes = setup.roster.names
        for f in self.faults:
            for n in f.nodes():
                if n not in nodes:
                    raise TxlibError(
                        f"fault '{f.describe()}' names unknown node {n!r}"
                        f"{suggestion(n, nodes)}; valid choices: {choices(nodes)}"
                    )
        proto.check_faults(self.faults, setup.roster, self.options)
        self._check_message_types(proto)
        keep_checked(key, (self.participants, self.faults, setup))

    def _check_fields(self) -> None:
        """Check the seed, name and description."""
        seed = self.seed
        if type(seed) is int and 0 <= seed <= MAX_INT and type(self.name) is str \
                and type(self.description) is str:
            return  # the common case, which every check below passes
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise TxlibError(f"seed must be a whole number, got {shown(self.seed)}")
        if not 0 <= self.seed <= MAX_INT:
            raise TxlibError(f"seed must be between 0 and {MAX_INT:,}, got {shown(self.seed)}")
        for text in ("name", "description"):
            if not isinstance(getattr(self, text), str):
                raise TxlibError(f"{text} must be a string, got {getattr(self, text)!r}")

    def _check_message_types(self, proto: Protocol) -> None:
        """A fault or trigger naming a message type the protocol never sends, or a log
        record it never writes, is a mistake (it would silently never fire); so is a
        trigger on a node whose role never writes that record or receives that type."""
        named = [(f, f.type) for f in self.faults if f.type is not None]
        named += [(f, f.when.what) for f in self.faults
                  if f.when is not None and f.when.action in ("sends", "receives")]
        logged = [(f, f.when.what) for f in self.faults
                  if f.when is not None and f.when.action == "logs"]
        if not named and not logged:
            return
        setup = self._setup_of(proto)
        if named:
            types = sorted(proto.message_types(setup.roster, setup.config))
            for f, kind in named:
                if kind not in types:
                    raise TxlibError(f"fault '{f.describe()}' names message type {kind!r}"
                                     f"{suggestion(kind, types)}, which {self.protocol} "
                                     f"never sends; valid choices: {choices(types)}")
        written = declared_records(role for _, role in setup.nodes()) if logged else None
        if written is not None:  # else a role does not declare its records
            records = sorted(written)
            for f, record in logged:
                if record not in records:
                    raise TxlibError(f"fault '{f.describe()}' names log record {record!r}"
                                     f"{suggestion(record, records)}, which {self.protocol} "
                                     f"never writes; valid choices: {choices(records)}")
        roles = dict(setup.nodes())
        for f in self.faults:
            if f.when is not None:
                _check_trigger_node(f, f.when, roles)
    @property
    def protocol_entry(self) -> Protocol:
        """The registered protocol this scenario runs."""
        return get_protocol(self.protocol)

    @property
    def roster(self) -> Roster:
        """Every node of this scenario, its role, and who must decide."""
        return self._setup_of(self.protocol_entry).roster

    def config_of(self, proto: Protocol | None = None) -> Any:
        """The configuration ``proto`` (None: the scenario's own protocol) makes of this
        scenario's participants and options."""
        return self._setup_of(self.protocol_entry if proto is None else proto).config

    def steps_at(self, node: str) -> tuple[str, ...]:
        """The named steps ``node`` runs in this scenario (a saga's services run steps,
        which a ``fail_step`` fault can make fail; a commit protocol has none)."""
        with self._resolving():
            return self.protocol_entry.steps_at(node, self.options)

    def _resolving(self) -> AbstractContextManager[None]:
        """Where the protocol reads what the scenario's options name (a subclass may hold
        its own saga, see :class:`~.saga.SagaScenario`): nothing changes here."""
        return nullcontext()

    def _setup_of(self, proto: Protocol) -> Setup:
        """``proto``'s set-up (configuration, roster, roles) for this scenario, made once
        per protocol object (a scenario is immutable, and so is a set-up)."""
        kept: Setup | None = self.__dict__.get("_setup")
        if kept is not None and kept.protocol is proto:
            return kept
        with self._resolving():
            setup = setup_of(proto, self.participants, self.__dict__["_options_json"])
        object.__setattr__(self, "_setup", setup)
        return setup

    def world(self, *, record: bool = True, variant: Protocol | None = None,
              volatile: bool = True) -> World:
        """A fresh world for this scenario, before its first step (the explorer and
        the lab start from it; :meth:`run` runs it to the end). ``variant`` builds the
        nodes with a variant of the scenario's protocol (see :meth:`run`); ``volatile``
        (see :meth:`run`)."""
        return self._world(self._setup_of(self._variant(variant)), record, volatile)

    def _world(self, setup: Setup, record: bool, volatile: bool) -> World:
        config = setup.config
        if record and config.max_steps > MAX_RECORDED_STEPS:
            raise TxlibError(
                f"option max_steps is {config.max_steps:,}, but a recorded run keeps at most "
                f"{MAX_RECORDED_STEPS:,} steps (each keeps its events and the acting node's "
                "volatile state: a few hundred bytes to several kB); lower max_steps, or "
                "run with record=False for longer runs")
        return World(setup.nodes(), config, self.seed, self.faults, record=record,
                     volatile=volatile)

    def run(self, *, record: bool = True, variant: Protocol | None = None,
            volatile: bool = True) -> Run:
        """Simulate this scenario. ``record=False`` skips the trace (for speed).
        ``volatile=False`` records the trace without each node's volatile state after
        every handler (what the lab's node table shows): for searches that only judge
        their runs.

        ``variant``: run a teaching variant of the protocol instead (a subclass with a
        rule broken, :mod:`txlib.protocols.variants`). The Run's scenario still names the
        registered protocol, so replaying it, or opening it in the lab, runs the correct
        protocol: the difference is the lesson."""
        if type(record) is not bool or type(volatile) is not bool:
            for name, flag in (("record", record), ("volatile", volatile)):
                if not isinstance(flag, bool):
                    raise TxlibError(f"{name} must be True or False, got {flag!r}")
        proto = self._variant(variant)
        setup = self._setup_of(proto)
        # A variant is judged with the registered protocol's roster, as its run names it.
        roster = setup.roster if variant is None else self.roster
        return self._finished(self._world(setup, record, volatile).run(), proto, roster)

    def run_of(self, world: World) -> Run:
        """The :class:`Run` of ``world``, a world of this scenario (see :meth:`world`)
        that has run to its end, judged as :meth:`run` judges it; the world is released
        (see :meth:`World.release`)."""
        proto = self.protocol_entry
        return self._finished(world, proto, self._setup_of(proto).roster)

    def _finished(self, world: World, proto: Protocol, roster: Roster) -> Run:
        values = node_values(world)
        verdict = proto.judge(history_of_world(world, roster, world.config, values))
        run = Run.of_world(self, world, verdict, values)
        world.release()  # nothing else holds it: let it go now
        return run

    def _variant(self, variant: Protocol | None) -> Protocol:
        proto = self.protocol_entry
        if variant is None:
            return proto
        if not isinstance(variant, type(proto)):
            raise TxlibError(f"a variant of {self.protocol!r} must be an instance of a "
                             f"subclass of {type(proto).__name__}, got {variant!r}")
        return variant

    def with_faults(self, *faults: Fault) -> Scenario:
        """The same scenario with ``faults`` added at the end of the plan."""
        if len(faults) == 1 and isinstance(faults[0], (list, tuple)):  # with_faults([...])
            raise TxlibError(f"with_faults takes the faults one by one: with_faults(f1, f2) "
                             f"or with_faults(*faults), not a list; got {shown(faults[0])}")
        return replace(self, faults=(*self.faults, *_check_faults(faults)))

    def replace(self, **changes: Any) -> Scenario:
        """A copy with some fields changed (``options`` are merged, not replaced)."""
        fields = ("protocol", "participants", "seed", "faults", "options", "name",
                  "description")
        for key in changes:
            if key not in fields:
                raise bad_choice("scenario field", key, fields)
        if "options" in changes:
            if not isinstance(changes["options"], dict):
                raise TxlibError(f"options must be a dict of option names, "
                                 f"got {shown(changes['options'])}")
            changes["options"] = {**self.options, **changes["options"]}
        # participants that were the protocol's default (none named) follow the new
        # protocol or options: another saga has other services
        with self._resolving():
            own = self.protocol_entry.default_participants(self.options)
        defaulted = self.participants == own
        if defaulted and "participants" not in changes and (
                "protocol" in changes or "options" in changes):
            changes["participants"] = ()
        return replace(self, **changes)

    # --- JSON ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "protocol": self.protocol,
            "participants": list(self.participants),
            "seed": self.seed,
            "faults": [f.to_dict() for f in self.faults],
            "options": self.options,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Canonical JSON (sorted keys), loadable with :meth:`from_json`."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> Scenario:
        if not isinstance(data, dict):
            raise TxlibError(f"a scenario must be a JSON object, got {type(data).__name__}")
        for key in data:
            if key not in _JSON_KEYS:
                raise bad_choice("scenario field", key, _JSON_KEYS)
        if "protocol" not in data:
            raise TxlibError(f"a scenario needs a 'protocol': one of {choices(PROTOCOLS)}")
        faults = data.get("faults", [])
        if not isinstance(faults, list):
            raise TxlibError(f"'faults' must be a list, got {faults!r}")
        return cls(
            protocol=data["protocol"],
            participants=data.get("participants", ()),
            seed=data.get("seed", 0),
            faults=tuple(Fault.from_dict(f) for f in faults),
            options=data.get("options", {}),
            name=data.get("name", ""),
            description=data.get("description", ""),
        )

    @classmethod
    def from_json(cls, text: str) -> Scenario:
        """Load a scenario; malformed JSON raises TxlibError saying where."""
        if not isinstance(text, str):
            raise TxlibError(f"from_json needs a JSON string, got {type(text).__name__}")
        if len(text) > MAX_JSON_CHARS:
            raise TxlibError(f"this scenario JSON has {len(text):,} characters; a scenario "
                             f"is at most {MAX_JSON_CHARS:,}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TxlibError(
                f"malformed scenario JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except RecursionError:
            raise TxlibError("this scenario JSON is nested too deeply to be a scenario") from None
        except ValueError as exc:  # e.g. a number with more digits than Python reads
            raise TxlibError(f"cannot read this scenario JSON: {exc}") from None
        return cls.from_dict(data)


def simulate(
    protocol: str,
    *,
    participants: int | Sequence[str] | None = None,
    seed: int = 0,
    faults: Iterable[Fault] = (),
    record: bool = True,
    **options: Any,
) -> Run:
    """Run ``protocol`` ("2pc", "3pc", "saga", ...) once and return the :class:`Run`.

    ``participants`` is a count or a list of names (default: three for a commit
    protocol, whose coordinator is always ``"coordinator"``; a saga's services come from
    its definition); ``options`` are network, timeout and protocol settings.
    """
    own = ("participants", "seed", "faults", "record")
    proto = get_protocol(protocol)
    if options:
        valid = proto.config_class.option_names()
        for key in options:
            if key not in valid and suggestion(key, own):
                raise TxlibError(f"unknown option {key!r}{suggestion(key, own)}; "
                                 f"valid choices: {choices([*own, *valid])}")
    scenario = _scenario(proto, protocol,
                         () if participants is None else participant_names(participants),
                         seed, _check_faults(faults), options)
    return scenario.run(record=record)


def _scenario(proto: Protocol, protocol: str, participants: tuple[str, ...], seed: Any,
              faults: tuple[Fault, ...], options: dict[str, Any]) -> Scenario:
    """``Scenario(protocol, participants, seed, faults, options)`` for :func:`simulate`.

    If a scenario that differs from it only in its seed passed every check before (see
    :func:`~.setup.checked`), it is made from what those checks gave, holding exactly
    the fields ``Scenario(...)`` would hold, without the dataclass's ``__init__`` (which
    sets each field through ``object.__setattr__``) and the rest of ``__post_init__``,
    which over a series of seeds cost about a twentieth of each whole run."""
    text = options_json(options)
    done = checked(check_key(proto, participants, text, faults))
    if done is None:
        return Scenario(protocol=protocol, participants=participants, seed=seed, faults=faults,
                        options=dict(options))
    scenario = made(Scenario, {
        "protocol": protocol, "participants": done[0], "seed": seed, "faults": done[1],
        "options": options_of(text), "name": "", "description": "", "_options_json": text,
        "_setup": done[2]})
    scenario._check_fields()
    return scenario

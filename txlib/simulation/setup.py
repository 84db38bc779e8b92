"""A scenario's set-up, worked out once: its configuration, roster and nodes' roles, and
the outcome of checking it.

Every run of ``simulate("2pc", seed=s)`` for a new seed ``s`` is the same scenario but
for its seed. For a protocol whose set-up depends on nothing but the participants and
options (:attr:`~txlib.protocols.base.Protocol.shared_setup`), the checks, the
configuration, the roster and the roles are therefore worked out once and shared by
every scenario and world with the same protocol, participants, options and faults. They
are immutable (a frozen configuration, a roster, roles that hold no per-node state), so
sharing them changes nothing but the time a run takes to start.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from typing import Any

from ..engine.faults import Fault
from ..engine.node import Role
from ..engine.plain import check_plain
from ..engine.roster import Roster
from ..protocols import Protocol

MAX_KEPT = 256  # set-ups (and checked scenarios) kept at most; then they are forgotten
EMPTY_OPTIONS = "{}"


class Setup:
    """What ``protocol`` makes of a scenario's participants and options: its
    configuration (validated), its roster and, on demand, its nodes' roles."""

    __slots__ = ("_nodes", "config", "protocol", "roster")

    def __init__(self, protocol: Protocol, participants: Sequence[str],
                 options: dict[str, Any]) -> None:
        self.protocol = protocol
        self.config = protocol.make_config(participants, options)  # validates the options
        self.roster: Roster = protocol.roster(participants, options)
        self._nodes: tuple[tuple[str, Role], ...] | None = None

    def nodes(self) -> Sequence[tuple[str, Role]]:
        """Each node's name and role, for a new world: built once if the protocol's
        set-up is shared, else afresh each time."""
        if not self.protocol.shared_setup:
            return self.protocol.build(self.roster, self.config)
        if self._nodes is None:
            self._nodes = tuple(self.protocol.build(self.roster, self.config))
        return self._nodes


def options_json(options: dict[str, Any]) -> str:
    """``options`` as canonical JSON (sorted keys), after checking they are plain JSON
    values; loading it gives the options exactly as a saved scenario gives them back."""
    if not options:
        return EMPTY_OPTIONS
    for key, value in options.items():
        check_plain(value, f"option {key}")
    return json.dumps(options, sort_keys=True)


def options_of(text: str) -> dict[str, Any]:
    """A new dict of the options ``text`` (from :func:`options_json`) holds."""
    options: dict[str, Any] = {} if text == EMPTY_OPTIONS else json.loads(text)
    return options


# (protocol, participants, options JSON) -> its set-up, for protocols that share them.
_SETUPS: dict[tuple[Any, ...], Setup] = {}
# (protocol, participants as given, options JSON, faults) -> (participants, faults,
# set-up) of a scenario that passed every check.
Checked = tuple[tuple[str, ...], tuple[Fault, ...], Setup]
_CHECKED: dict[Hashable, Checked] = {}


def setup_of(protocol: Protocol, participants: tuple[str, ...], options: str) -> Setup:
    """The set-up of ``protocol`` for these participants and options (JSON): the shared
    one if the protocol shares its set-ups, else a new one."""
    if not protocol.shared_setup:
        return Setup(protocol, participants, options_of(options))
    key = (protocol, participants, options)
    setup = _SETUPS.get(key)
    if setup is None:
        setup = Setup(protocol, participants, options_of(options))
        _keep(_SETUPS, key, setup)
    return setup


def check_key(protocol: Protocol, participants: Any, options: str,
              faults: Any) -> Hashable | None:
    """The key under which a scenario's checks are kept, or None if they cannot be
    (the protocol does not share set-ups, or the values are not hashable as given)."""
    if not protocol.shared_setup or type(participants) is not tuple or type(faults) is not tuple:
        return None
    key = (protocol, participants, options, faults)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def checked(key: Hashable | None) -> Checked | None:
    """What the checks of a scenario with ``key`` gave, if one passed them before."""
    return None if key is None else _CHECKED.get(key)


def keep_checked(key: Hashable | None, value: Checked) -> None:
    """Remember that a scenario with ``key`` passed every check (see :func:`checked`)."""
    if key is not None:
        _keep(_CHECKED, key, value)


def _keep(store: dict[Any, Any], key: Hashable, value: Any) -> None:
    if len(store) >= MAX_KEPT:
        store.clear()
    store[key] = value

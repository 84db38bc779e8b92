"""The resource each commit-protocol participant owns: one bank account.

An operation is ``("debit", amount)`` or ``("credit", amount)``. A debit that would take
the balance below zero cannot be applied, so that participant votes NO. The committed
balance is derived from the durable log (initial balance plus every committed
operation), so it survives crashes exactly as a database's data would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import TxlibError, bad_choice

OPERATIONS = ("debit", "credit")
DEFAULT_BALANCE = 500

Operation = tuple[str, int]


def default_operations(participants: Sequence[str], amount: int) -> dict[str, Operation]:
    """A transfer: the first participant pays ``amount`` to each of the others.

    With one participant it is a single debit of ``amount``.
    """
    if len(participants) == 1:
        return {participants[0]: ("debit", amount)}
    ops: dict[str, Operation] = {participants[0]: ("debit", amount * (len(participants) - 1))}
    for p in participants[1:]:
        ops[p] = ("credit", amount)
    return ops


def check_operations(raw: Mapping[str, Any], participants: Sequence[str]) -> dict[str, Operation]:
    """Validate ``{participant: (kind, amount)}``; every participant needs one."""
    if not isinstance(raw, Mapping):
        raise TxlibError(f"operations must map participant -> (kind, amount), got {raw!r}")
    ops: dict[str, Operation] = {}
    for name, op in raw.items():
        if name not in participants:
            raise bad_choice("participant in operations", name, participants)
        if not isinstance(op, (list, tuple)) or len(op) != 2:
            raise TxlibError(f"operation for {name} must be (kind, amount), got {op!r}")
        kind, amount = op
        if kind not in OPERATIONS:
            raise bad_choice(f"operation kind for {name}", kind, OPERATIONS)
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            raise TxlibError(f"amount for {name} must be a whole number >= 0, got {amount!r}")
        ops[name] = (kind, amount)
    missing = [p for p in participants if p not in ops]
    if missing:
        raise TxlibError(f"operations give no operation for {missing}; every participant needs one")
    return ops


def check_balances(raw: Mapping[str, Any] | None, participants: Sequence[str]) -> dict[str, int]:
    """Initial balances. A participant not named starts with DEFAULT_BALANCE, except the
    first, the payer of the default transfer, which starts with DEFAULT_BALANCE for each
    other participant, so the default transfer never overdraws."""
    balances = dict.fromkeys(participants, DEFAULT_BALANCE)
    balances[participants[0]] = DEFAULT_BALANCE * max(1, len(participants) - 1)
    if raw is None:
        return balances
    if not isinstance(raw, Mapping):
        raise TxlibError(f"balances must map participant -> amount, got {raw!r}")
    for name, value in raw.items():
        if name not in participants:
            raise bad_choice("participant in balances", name, participants)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise TxlibError(f"balance of {name} must be a whole number >= 0, got {value!r}")
        balances[name] = value
    return balances


def can_apply(balance: int, op: Operation) -> bool:
    """False for a debit that would overdraw the account."""
    kind, amount = op
    return kind == "credit" or balance >= amount


def apply(balance: int, op: Operation) -> int:
    """The balance after ``op``."""
    kind, amount = op
    return balance + amount if kind == "credit" else balance - amount


def balances_after(
    participants: Sequence[str], options: Mapping[str, Any], logs: Mapping[str, Sequence[Any]]
) -> dict[str, int]:
    """Each participant's committed balance: its initial balance plus what its durable
    log says it committed (``COMMITTED`` records carry the operation)."""
    out = check_balances(options.get("balances"), participants)
    for p in participants:
        for record in logs.get(p, ()):
            if record.record == "COMMITTED":
                out[p] = apply(out[p], (record.data["op"], record.data["amount"]))
    return out

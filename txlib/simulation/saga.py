"""A saga definition you can run: :class:`txlib.Saga`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from ..errors import TxlibError, shown
from ..sagas.definition import SagaDefinition, resolving
from .run import Run
from .scenario import Scenario

SAGA_OPTION = "saga"  # the option naming the saga a scenario runs


@dataclass(frozen=True, eq=False)
class SagaScenario(Scenario):
    """The scenario of a saga you defined (:meth:`Saga.scenario`): it, and every
    scenario made from it (``replace``, ``with_faults``, the explorer's), runs
    ``definition``, even after another saga of yours takes its name. Its JSON names the
    saga only: loaded back, it runs the saga then defined under that name."""

    definition: SagaDefinition | None = field(default=None, repr=False, compare=False)

    def _resolving(self) -> AbstractContextManager[None]:
        return resolving(self.definition)


class Saga(SagaDefinition):
    """A saga definition (see :class:`~txlib.sagas.SagaDefinition`) that can
    :meth:`simulate` itself. Add steps with :meth:`step`, then simulate it."""

    def scenario(self, *, protocol: str = "saga", seed: int = 0, faults: Sequence[Any] = (),
                 **options: Any) -> Scenario:
        """A Scenario running this saga (``protocol`` "saga" or "saga-choreography"),
        even if a later saga takes its name (which this leaves to that saga)."""
        if not self.steps:
            raise TxlibError(f"saga {self.name} has no steps yet: add some with .step(...)")
        if SAGA_OPTION in options:  # it would run that saga instead, silently
            raise TxlibError(f"saga {self.name} runs itself, so option saga="
                             f"{shown(options[SAGA_OPTION])} would run another saga in its place; "
                             "leave it out (txlib.simulate('saga', saga=NAME) runs a saga "
                             "by its name)")
        return SagaScenario(protocol, seed=seed, faults=tuple(faults),
                            options={SAGA_OPTION: self.name, **options},
                            description=self.description, definition=self)

    def simulate(self, *, protocol: str = "saga", seed: int = 0, faults: Sequence[Any] = (),
                 record: bool = True, **options: Any) -> Run:
        """Run this saga once and return the Run."""
        return self.scenario(protocol=protocol, seed=seed, faults=faults,
                             **options).run(record=record)

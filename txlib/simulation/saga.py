"""A saga definition you can run: :class:`txlib.Saga`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import TxlibError
from ..sagas.definition import SagaDefinition, register
from .run import Run
from .scenario import Scenario


class Saga(SagaDefinition):
    """A saga definition (see :class:`~txlib.sagas.SagaDefinition`) that can
    :meth:`simulate` itself. Add steps with :meth:`step`, then simulate it."""

    def scenario(self, *, protocol: str = "saga", seed: int = 0, faults: Sequence[Any] = (),
                 **options: Any) -> Scenario:
        """A Scenario running this saga (``protocol`` "saga" or "saga-choreography")."""
        if not self.steps:
            raise TxlibError(f"saga {self.name} has no steps yet: add some with .step(...)")
        register(self)  # a later saga of the same name may have replaced this one
        return Scenario(protocol, seed=seed, faults=tuple(faults),
                        options={"saga": self.name, **options},
                        description=self.description)

    def simulate(self, *, protocol: str = "saga", seed: int = 0, faults: Sequence[Any] = (),
                 record: bool = True, **options: Any) -> Run:
        """Run this saga once and return the Run."""
        return self.scenario(protocol=protocol, seed=seed, faults=faults,
                             **options).run(record=record)

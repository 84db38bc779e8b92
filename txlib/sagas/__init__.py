"""Saga definitions (:class:`SagaDefinition`) and the built-in ones: the seed's
e-commerce order and the isolation examples. Their checks are in
:mod:`txlib.properties.saga`; running one is :class:`txlib.Saga`."""

from .definition import Retry, SagaDefinition, Step, StepFailed, get_saga

__all__ = ["Retry", "SagaDefinition", "Step", "StepFailed", "get_saga"]

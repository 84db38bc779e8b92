"""Sagas: definitions (:class:`Saga`), the seed's e-commerce example, and their checks."""

from .definition import Retry, Saga, Step, StepFailed, get_saga

__all__ = ["Retry", "Saga", "Step", "StepFailed", "get_saga"]

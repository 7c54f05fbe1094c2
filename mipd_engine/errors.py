"""Exceptions raised by the engine. Every message names the offending field path."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of all engine errors."""


class InvalidInputError(EngineError, ValueError):
    """Input (model file, case, dataset) that the engine refuses, with the path of the field at fault."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class ModelError(InvalidInputError):
    """A model file that is malformed or inconsistent."""


class ParameterValueError(EngineError, ValueError):
    """Parameters evaluated to impossible values (negative volume, non-finite rate) for some patient.

    ``path`` is the model field the value comes from (``parameters.V``, ``outputs.conc.volume``).
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(message)

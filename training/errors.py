"""The one error type of the training package: bad input data or arguments (CLI exit code 2)."""

from __future__ import annotations


class TrainingDataError(Exception):
    """Input data or arguments that training refuses, with a message naming the problem."""

"""Errors that are not the user's input: work that failed, or a run that another process holds.

The ``prefgym`` command exits 2 for bad input (``ValueError`` and its kind) and 1
for these, each with its own message as the one line it prints.
"""

from __future__ import annotations


class Failure(RuntimeError):
    """Something that went wrong while working, though every input was good."""


class RunInUse(Failure):
    """Another live process trains the run."""

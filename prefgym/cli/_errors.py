"""What the ``prefgym`` command says when something goes wrong: one line and an exit status.

A researcher who mistyped a value, or was handed a damaged run directory, needs
to know what is wrong and what to do, not where in prefgym it was noticed. Every
exception is turned into one line here; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

BAD_INPUT = 2
"""Exit status of a bad value, file or run directory (argparse's, too)."""
FAILED = 1
"""Exit status of anything else that failed."""
DEBUG_VARIABLE = "PREFGYM_DEBUG"
"""Environment variable that, set to 1, makes errors show their traceback."""
_DEBUG_HINT = f"(`prefgym --debug ...` or {DEBUG_VARIABLE}=1 shows the traceback)"


def describe_failure(error: Exception, run: str | None = None) -> tuple[int, str]:
    """The exit status and the one-line message for ``error``.

    Args:
        error: What went wrong.
        run: The run directory the command was given, if any (named for a damaged store).
    """
    from prefgym.errors import Failure
    from prefgym.store import StoreError

    if isinstance(error, Failure):
        return FAILED, _one_line(str(error))
    if isinstance(error, sqlite3.OperationalError):  # locked, disk full, I/O: not damage
        where = f" on {run}" if run else ""
        return FAILED, _one_line(f"the preference store{where} failed: {error}")
    if isinstance(error, sqlite3.DatabaseError):  # found mid-file, after the store opened
        store = "RUN/store.sqlite"
        if run:
            store = run if Path(run).is_file() else f"{run}/store.sqlite"
        named = f"{store} " if run else ""
        return BAD_INPUT, _one_line(
            f"the preference store {named}is damaged ({error}); copy the run "
            f"directory aside and recover what it holds with `sqlite3 {store} .recover`"
        )
    if isinstance(error, PermissionError):
        where = f" {error.filename}" if error.filename else ""
        return BAD_INPUT, _one_line(
            f"permission denied on{where} ({error.strerror or error}); make it writable "
            "(chmod u+w) or copy the run directory somewhere you can write"
        )
    if isinstance(error, (ValueError, StoreError, FileExistsError, FileNotFoundError)):
        return BAD_INPUT, _one_line(str(error) or type(error).__name__)
    if isinstance(error, (NotADirectoryError, IsADirectoryError)):
        return BAD_INPUT, _one_line(str(error))
    if isinstance(error, ModuleNotFoundError):
        return FAILED, _one_line(str(error))
    return FAILED, _one_line(f"{type(error).__name__}: {error} {_DEBUG_HINT}")


def _one_line(text: str) -> str:
    return " ".join(text.split())

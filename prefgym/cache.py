"""Where prefgym keeps files it can rebuild: trained tokenizers and the like.

The directory is ``$PREFGYM_CACHE`` when that is set, otherwise ``prefgym``
under ``$XDG_CACHE_HOME`` (``~/.cache`` when that is unset too).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache directory, created if it does not exist yet.

    Returns:
        ``$PREFGYM_CACHE`` if set, else ``$XDG_CACHE_HOME/prefgym``, else
        ``~/.cache/prefgym``.

    Raises:
        OSError: If the directory cannot be created (the message names it;
            set ``PREFGYM_CACHE`` to a writable place).
    """
    explicit = os.environ.get("PREFGYM_CACHE")
    if explicit:
        path = Path(explicit).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base).expanduser() / "prefgym"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"cannot create the prefgym cache directory {str(path)!r} ({error}); "
            "set PREFGYM_CACHE to a writable directory"
        ) from error
    return path

"""``python -m prefgym.cli`` and the ``prefgym`` script: the ``prefgym`` command.

:func:`run` imports the command inside its own guard, so that Ctrl-C while the
heavy modules load ends quietly too.
"""

import sys


def run() -> int:
    """Run the ``prefgym`` command with ``sys.argv``; returns the exit status."""
    try:
        from prefgym.cli._main import main
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())

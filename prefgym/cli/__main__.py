"""``python -m prefgym.cli``: the ``prefgym`` command."""

import sys

from prefgym.cli._main import main

sys.exit(main())

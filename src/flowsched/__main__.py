"""``python -m flowsched``: the command line (:func:`flowsched.cli.main`)."""

import sys

from .cli import main

__all__: list[str] = []

sys.exit(main())

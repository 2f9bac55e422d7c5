"""`python -m hil.cli`: the `hil` command from an interpreter that has no console script."""

import sys

from hil.cli import main

sys.exit(main())

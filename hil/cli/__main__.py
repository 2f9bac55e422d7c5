"""`python -m hil.cli`: the command line, for child processes started with this interpreter."""

import sys

from hil.cli import main

sys.exit(main())

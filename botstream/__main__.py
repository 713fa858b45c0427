"""`python -m botstream`: the same command line as the installed `botstream` script."""

import sys

from botstream.ops.cli import main

sys.exit(main())

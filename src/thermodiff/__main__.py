"""`python -m thermodiff` is `thermodiff` (so that `torchrun -m thermodiff train ...` works)."""

import sys

from thermodiff.cli import main

sys.exit(main())

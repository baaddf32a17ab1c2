"""``python -m workers.cli``: the same as ``provisioner``."""

import sys

from workers.cli.main import main

sys.exit(main())

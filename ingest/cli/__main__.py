"""``python -m ingest.cli``: the ``oktaduck`` command."""

import sys

from ingest.cli import main

sys.exit(main())

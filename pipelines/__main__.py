"""``python -m pipelines <stage> ...`` is ``perfgraph <stage> ...`` (:mod:`pipelines.cli`)."""

import sys

from pipelines.cli import main

sys.exit(main())

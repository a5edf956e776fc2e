"""The errors bad input can cause: reported to users in one line that names the file."""

from __future__ import annotations

import sys

from featurize.build import FeaturizeError
from featurize.halide.graph import DagDumpError
from featurize.schema import SchemaError
from pipelines.halide.programs import UserProgramError
from pipelines.halide.ops import SpecError
from pipelines.tvm.ops import TVMSpecError

#: Every error a user can cause (a wrong path, a bad file, a bad program or spec), on either
#: backend: ``perfgraph`` reports each as one line naming the file and the problem, exit 2.
USER_ERRORS = (SchemaError, FeaturizeError, DagDumpError, UserProgramError, SpecError, TVMSpecError, OSError)


def run_reporting_user_errors(main, argv=None) -> int:
    """Run a CLI ``main``; an error a user can cause is one line on stderr and exit code 2."""
    try:
        return main(argv)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

"""The errors bad input can cause: reported to users in one line that names the file."""

from __future__ import annotations

from featurize.build import FeaturizeError
from featurize.halide_graph import DagDumpError
from featurize.schema import SchemaError
from pipelines.programs import UserProgramError
from pipelines.stages import SpecError

USER_ERRORS = (SchemaError, FeaturizeError, DagDumpError, UserProgramError, SpecError, OSError)

"""TVM program entries: the JSON record ``tvm-generate`` writes for a random or zoo program."""

from __future__ import annotations

from pipelines.tvm.generator import random_spec
from pipelines.tvm.ops import TVMSpecError
from pipelines.tvm.zoo import ZOO


def program_entry(
    program_id: str, *, seed: int | None = None, params: dict | None = None, zoo: str | None = None
) -> dict:
    """The JSON entry of one TVM program (what ``generate`` writes and ``sample`` reads)."""
    if (seed is None) == (zoo is None):
        raise TVMSpecError("give exactly one of seed and zoo")
    if zoo is not None:
        if zoo not in ZOO:
            raise TVMSpecError(f"unknown TVM zoo program {zoo!r}; choose from {', '.join(ZOO)}")
        return {
            "program_id": program_id,
            "origin": "zoo",
            "source": f"zoo:{zoo}",
            "seed": None,
            "params": {},
            "spec": ZOO[zoo],
        }
    return {
        "program_id": program_id,
        "origin": "random",
        "source": "pipelines.tvm_programs",  # as TVM datasets have always recorded it (now pipelines.tvm.programs)
        "seed": seed,
        "params": params or {},
        "spec": random_spec(seed, params),
    }

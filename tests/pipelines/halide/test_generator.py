from __future__ import annotations

import json

from pipelines.halide.generator import DEFAULT_PARAMS, generate_spec
from pipelines.halide.ops import OP_ARITY, build_program


def test_same_seed_same_program() -> None:
    a, b = generate_spec(7), generate_spec(7)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    pa, pb = build_program(a), build_program(b)
    assert sorted(pa.op_kinds) == sorted(pb.op_kinds)
    assert pa.output_shapes == pb.output_shapes and pa.macs == pb.macs


def test_different_seeds_differ() -> None:
    specs = {json.dumps(generate_spec(s)["stages"], sort_keys=True) for s in range(10)}
    assert len(specs) == 10


def test_stage_count_bounds_and_vocabulary() -> None:
    params = {"min_stages": 3, "max_stages": 30}
    for seed in range(30):
        spec = generate_spec(seed, params)
        assert all(st["op"] in OP_ARITY for st in spec["stages"])
        # Softmax adds four Funcs; dead branches are pruned, so only the upper bound is firm.
        n_funcs = sum(4 if st["op"] == "softmax" else 1 for st in spec["stages"])
        assert 1 <= n_funcs <= 30


def test_dags_have_fan_out_and_joins() -> None:
    n_dag = 0
    for seed in range(20):
        stages = generate_spec(seed)["stages"]
        uses = [a for st in stages for a in st["args"]]
        if len(uses) > len(set(uses)):
            n_dag += 1
    assert n_dag >= 5, "random programs should not all be chains"


def test_no_dead_stages() -> None:
    for seed in range(20):
        spec = generate_spec(seed)
        used = {a for st in spec["stages"] for a in st["args"]} | set(spec["outputs"])
        assert all(st["name"] in used for st in spec["stages"])


def test_default_params_are_complete() -> None:
    assert set(DEFAULT_PARAMS["op_weights"]) <= set(OP_ARITY)


def test_image_operators_are_opt_in() -> None:
    # Naming stencil and scale at weight 0 draws exactly the default programs: the new
    # operators' attribute draws never run, so a seed keeps its program.
    zero = {"op_weights": {**DEFAULT_PARAMS["op_weights"], "stencil": 0, "scale": 0}}
    for seed in range(40):
        assert generate_spec(seed, zero) == generate_spec(seed)
        assert not {st["op"] for st in generate_spec(seed)["stages"]} & {"stencil", "scale"}


def test_image_operators_build_when_weighted() -> None:
    params = {"widths": [64, 256], "channels": [1, 3], "op_weights": {"stencil": 3, "scale": 1, "binary": 1, "unary": 1}}
    drawn = set()
    for seed in range(12):
        spec = generate_spec(seed, params)
        drawn |= {st["op"] for st in spec["stages"]}
        program = build_program(spec)
        stencils = [st for st in spec["stages"] if st["op"] == "stencil"]
        assert all(st["attrs"]["axis"] in ("x", "y") and len(st["attrs"]["weights"]) in (3, 5) for st in stencils)
        assert program.macs > 0
    assert {"stencil", "scale"} <= drawn

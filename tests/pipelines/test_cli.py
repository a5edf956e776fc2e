"""``perfgraph``: every stage is a subcommand, and a wrong path is one line and exit code 2."""

from __future__ import annotations

import pytest

from pipelines.cli import STAGES, main

MISSING = "/nonexistent/perfgraph"


def wrong_path_args(tmp_path) -> dict[str, list[str]]:
    """Each stage's flags with one input path that does not exist (outputs under tmp_path)."""
    out = str(tmp_path / "out")
    timing = ["--timing", "{}"]
    return {
        "generate": ["--program-id", "user_x", "--user", f"{MISSING}/x.py", "--out", f"{out}/e.json"],
        "compile": ["--entry", f"{MISSING}/entry.json", "--out-dir", out, "--sampling", "{}"],
        "refine": ["--entry", f"{MISSING}/entry.json", "--candidates", f"{MISSING}/candidates.parquet",
                   "--out", f"{out}/refined.parquet", "--probe", f"{out}/probe.parquet",
                   "--sampling", '{"refine": {"count": 1}}', *timing],
        "bench": ["--candidates", f"{MISSING}/candidates.parquet", "--out", f"{out}/m.parquet",
                  "--samples", f"{out}/s.parquet", "--machine", f"{out}/machine.json", *timing],
        "retime": ["--out", f"{out}/m.parquet", "--samples", f"{out}/s.parquet", "--fraction", "0.5", *timing,
                   f"{MISSING}/candidates.parquet"],
        "featurize": ["--out", out, f"{MISSING}/work"],
        "summary": [MISSING],
        "publish": ["--dataset", MISSING, "--config", f"{MISSING}/config.json", "--out", out],
        "merge": ["--out", out, MISSING, f"{MISSING}/2"],
        "split": ["--dataset", MISSING, "--out", f"{out}/split.parquet"],
        "search": ["--dataset", MISSING, "--split", f"{MISSING}/split.parquet", "--model", "gcn",
                   "--out", f"{out}/s.json", "--trials", "1"],
        "train": ["--dataset", MISSING, "--split", f"{MISSING}/split.parquet", "--model", "gcn", "--out", out],
        "evaluate": ["--dataset", MISSING, "--split", f"{MISSING}/split.parquet", "--model-dir", MISSING],
        "export-weights": ["--model-dir", MISSING, "--out", f"{out}/w.weights"],
        "summarize": ["--models-dir", MISSING, "--dataset", MISSING, "--out", f"{out}/summary.json"],
        "report": ["--dataset", MISSING, "--models", MISSING, "--out", out, "--strict"],
        "adapt": ["--models-dir", MISSING, "--out", out],
        "predict": [f"{MISSING}/p.py", "--model", MISSING],
        "tune": [f"{MISSING}/p.py", "--model", MISSING],
        "tvm-generate": ["--program-id", "t", "--zoo", "no_such_layer", "--out", f"{MISSING}/e.json"],
        "tvm-sample": ["--entry", f"{MISSING}/entry.json", "--out-dir", out],
        "tvm-bench": ["--work-dir", MISSING, "--out", f"{out}/m.parquet", "--samples", f"{out}/s.parquet",
                      "--machine", f"{out}/machine.json", *timing],
        "tvm-retime": ["--out", f"{out}/m.parquet", "--samples", f"{out}/s.parquet", "--fraction", "0.5", *timing,
                       MISSING],
        "tvm-featurize": ["--out", out, MISSING],
        "tvm-train": ["--dataset", MISSING, "--split", f"{MISSING}/split.parquet", "--model", "tvm_xgb", "--out", out],
        "tvm-evaluate": ["--dataset", MISSING, "--split", f"{MISSING}/split.parquet", "--model-dir", MISSING],
        "tvm-summarize": ["--models-dir", MISSING, "--dataset", MISSING, "--split", f"{MISSING}/s.parquet",
                          "--out", f"{out}/summary.json"],
        "tvm-tune": ["random:1", "--model", MISSING, "--trials", "2", "--work-dir", out],
    }  # fmt: skip


def test_help_lists_every_stage(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in STAGES)


def test_every_stage_has_its_own_help(capsys) -> None:
    for name in STAGES:
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0, name
        assert "--" in capsys.readouterr().out, name


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_wrong_path_is_one_line_and_exit_2(stage, tmp_path, capsys) -> None:
    args = wrong_path_args(tmp_path)
    assert set(args) == set(STAGES)
    assert main([stage, *args[stage]]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "/nonexistent" in err[0] or "no_such_layer" in err[0], err


def test_an_unknown_stage_is_refused(capsys) -> None:
    assert main(["fly"]) == 2
    assert "unknown stage 'fly'" in capsys.readouterr().err


def test_bad_settings_are_one_line_too(tmp_path, capsys) -> None:
    """Not only paths: a bad setting (a timing protocol of zero rounds) is one line and exit 2 too."""
    args = wrong_path_args(tmp_path)["bench"]
    args[args.index("--timing") + 1] = '{"rounds": 0}'
    assert main(["bench", *args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == ["error: timing.rounds must be at least 1"], err


def test_every_kind_of_bad_input_is_a_user_error() -> None:
    """One base class, so every command reports them alike (exit 2, one line)."""
    from featurize.build import FeaturizeError
    from featurize.halide.graph import DagDumpError
    from featurize.schema import USER_ERRORS, SchemaError, UserError
    from models.select import SelectError
    from pipelines.halide.ops import SpecError
    from pipelines.halide.programs import UserProgramError
    from pipelines.tvm.ops import TVMSpecError

    assert USER_ERRORS == (UserError, OSError)
    for kind in (SchemaError, FeaturizeError, DagDumpError, SelectError, SpecError, UserProgramError, TVMSpecError):
        assert issubclass(kind, UserError), kind

"""perfgraph predict: a user's program, drawn, featurized and ranked by a trained model."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from models.select import SeedEnsemble, SelectError, load_model, predict, score_candidates, tune
from pipelines.cli import main  # perfgraph: what a user runs
from models.train import train
from tests.conftest import FAST_TIMING, ROOT, SMALL_SAMPLING

pytestmark = pytest.mark.write_disk

SAMPLING = {
    **SMALL_SAMPLING,
    "samplers": {
        "adams2019_random_weights_d50": {"count": 3, "beam_size": 1, "random_dropout": 50, "weights": "random",
                                         "max_attempts": 10},  # fmt: skip
    },
    "reference_autoschedulers": ["Li2018"],
}


@pytest.fixture(scope="module")
def model_dir(fake_dataset, fake_split, tmp_path_factory):
    d = tmp_path_factory.mktemp("model") / "gcn"
    train("gcn", fake_dataset, fake_split, d, epochs=2, progress=False)
    return d


def test_predict_ranks_every_featurized_candidate_and_keeps_the_rest(model_dir, tmp_path) -> None:
    table = predict(ROOT / "examples/sharpen.py", model_dir, work_dir=tmp_path / "work", sampling=SAMPLING)
    scored = table.filter(pl.col("status") == "scored")
    assert scored.height == 4 and scored["rank"].to_list() == [1, 2, 3, 4]
    assert (scored["predicted_s"] > 0).all() and scored["predicted_s"].is_sorted()
    # Li2018's schedule is featurized by the loop-nest reader and ranked among them.
    li = table.filter(pl.col("sampler") == "li2018")
    assert li.height == 1 and li["status"][0] == "scored" and li["rank"][0] in (1, 2, 3, 4)
    assert not (tmp_path / "work/lib").exists() or not any((tmp_path / "work/lib").glob("*.so"))  # nothing compiled


def test_seed_runs_score_as_one_by_the_geometric_mean(model_dir, fake_dataset, fake_split, tmp_path) -> None:
    import shutil

    import numpy as np

    runs = tmp_path / "gcn"
    shutil.copytree(model_dir, runs)
    train("gcn", fake_dataset, fake_split, runs / "seeds/1", epochs=2, seed=1, progress=False)
    table = predict(ROOT / "examples/sharpen.py", runs, work_dir=tmp_path / "work", sampling=SAMPLING, seeds=True)
    ensemble = load_model(runs, seeds=True)
    assert isinstance(ensemble, SeedEnsemble) and len(ensemble.runs) == 2
    one = [score_candidates(tmp_path / "work", load_model(r)).sort("schedule_id") for r in (runs, runs / "seeds/1")]
    both = table.sort("schedule_id").filter(pl.col("status") == "scored")
    assert both.height == 4
    expect = np.sqrt(one[0].filter(pl.col("status") == "scored")["predicted_s"].to_numpy()
                     * one[1].filter(pl.col("status") == "scored")["predicted_s"].to_numpy())  # fmt: skip
    np.testing.assert_allclose(both["predicted_s"].to_numpy(), expect, rtol=1e-6)
    assert not np.allclose(one[0]["predicted_s"].drop_nulls().to_numpy(), one[1]["predicted_s"].drop_nulls().to_numpy())
    # Without seeds/ the ensemble is the one run.
    assert len(load_model(model_dir, seeds=True).runs) == 1


def test_cli_prints_the_table_and_refuses_bad_input_in_one_line(model_dir, tmp_path, capsys, monkeypatch) -> None:
    import models.select as select

    monkeypatch.setattr(select, "default_sampling",
                        lambda extra=None: {**SAMPLING, "samplers": {**SAMPLING["samplers"], **(extra or {})}})  # fmt: skip
    # --extra-samplers joins the mix: here a beam-2 search with random weights beside it.
    extra = '{"beam2": {"count": 1, "beam_size": 2, "weights": "random", "random_dropout": 50, "max_attempts": 5}}'
    assert main(["predict", str(ROOT / "examples/sharpen.py"), "--model", str(model_dir), "--extra-samplers", extra,
                 "--work-dir", str(tmp_path / "w"), "--out", str(tmp_path / "ranked.parquet")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["rank", "predicted", "status"] and " ms " in out
    ranked = pl.read_parquet(tmp_path / "ranked.parquet")
    assert ranked.height >= 4 and ranked.filter(pl.col("sampler") == "beam2")["status"].to_list() == ["scored"]
    assert main(["predict", str(ROOT / "examples/sharpen.py"), "--model", str(model_dir), "--seeds",
                 "--work-dir", str(tmp_path / "w2")]) == 0  # fmt: skip
    assert " ms " in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["predict", str(ROOT / "examples/sharpen.py"), "--model", str(model_dir), "--extra-samplers", "{beam"])
    assert "not JSON" in capsys.readouterr().err
    assert main(["predict", str(ROOT / "examples/sharpen.py"), "--model", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0] and "checkpoint.pt" in err[0]
    bad = tmp_path / "bad.py"
    bad.write_text("def build(:\n")
    assert main(["predict", str(bad), "--model", str(model_dir)]) == 2
    assert "syntax error" in capsys.readouterr().err
    no_estimates = tmp_path / "no_estimates.py"
    no_estimates.write_text(
        "import halide as hl\n"
        "def build():\n"
        "    img = hl.ImageParam(hl.Float(32), 2, 'img')\n"
        "    x, y = hl.Var('x'), hl.Var('y')\n"
        "    f = hl.Func('f')\n"
        "    f[x, y] = img[x, y] * 2\n"
        "    f.set_estimates([(0, 64), (0, 64)])\n"
        "    return f\n"
    )
    assert main(["tune", str(no_estimates), "--model", str(model_dir), "--work-dir", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_estimates.py" in err[0] and "estimates" in err[0]
    # The model directory is checked before the program is even read.
    assert main(["tune", str(bad), "--model", str(tmp_path / "nowhere")]) == 2
    assert "checkpoint.pt" in capsys.readouterr().err
    with pytest.raises(SelectError, match="not found"):
        predict(tmp_path / "missing.py", model_dir)


def test_tune_times_the_top_k_and_the_references_and_writes_the_schedule(model_dir, tmp_path) -> None:
    # A beam of 2 stands in for Halide's 32 to keep the test short; the pick is made the same way.
    result = tune(ROOT / "examples/sharpen.py", model_dir, work_dir=tmp_path / "work", sampling=SAMPLING,
                  timing={**FAST_TIMING, "threads": 1}, top_k=2, beam_size=2, beam_timeout_s=60,
                  calibration_dir=tmp_path / "cal")  # fmt: skip
    table = result["table"]
    timed = table.filter(pl.col("timed_as").is_not_null())
    # The two predicted fastest, then every reference pick not among them.
    assert set(timed.filter(pl.col("rank").is_not_null() & pl.col("timed_as").str.starts_with("top"))["rank"]) == {1, 2}
    assert {"adams2019_beam", "li2018", "mullapudi2016"} <= set(timed["sampler"]) | set(
        table.filter(pl.col("status") != "scored")["sampler"]
    )
    assert (timed["timing_status"] == "ok").all() and (timed["measured_s"] > 0).all()
    default = timed.filter(pl.col("sampler") == "adams2019_beam")
    assert default.height == 1 and default["speedup"][0] == pytest.approx(1.0)
    assert timed["speedup"].is_not_null().all()
    # Untimed candidates keep their rows (no measured time).
    assert table.height > timed.height and table.filter(pl.col("timed_as").is_null())["measured_s"].is_null().all()
    header = Path(result["schedule_file"]).read_text()
    assert "inline void apply_schedule_sharpen(::Halide::Pipeline pipeline" in header
    assert_compiles_against_halide(Path(result["schedule_file"]), tmp_path)
    assert result["chosen"]["measured_s"] == timed["measured_s"].min()
    record = (tmp_path / "work/tune.json").read_text()
    assert "halide_default_s" in record and len(result["candidates"]) == table.height


def assert_compiles_against_halide(header: Path, tmp_path: Path) -> None:
    """The written schedule is C++ a user can include: it passes the compiler's syntax check
    against the Halide.h that ships with the halide wheel."""
    import shutil
    import subprocess

    import halide

    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no C++ compiler to check the written schedule with")
    include = Path(halide.__file__).parent / "include"
    src = tmp_path / "uses_schedule.cpp"
    src.write_text(f'#include "{header.name}"\nint main() {{ return 0; }}\n')
    done = subprocess.run([cxx, "-std=c++17", "-fsyntax-only", f"-I{include}", f"-I{header.parent}", str(src)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_extra_samplers_join_the_default_mix_with_the_schema_defaults() -> None:
    from models.select import default_sampling

    base = default_sampling()
    extra = default_sampling({"adams2019_beam_dropout": {"count": 3, "beam_size": 8, "random_dropout": 50}})
    assert set(extra["samplers"]) == set(base["samplers"]) | {"adams2019_beam_dropout"}
    added = extra["samplers"]["adams2019_beam_dropout"]
    assert added == {"count": 3, "autoscheduler": "Adams2019", "beam_size": 8, "random_dropout": 50, "weights": "shipped",
                     "max_attempts": 40}
    # The schema's reason, not only its header: a reference pick's name, an unknown key, a taken name.
    with pytest.raises(SelectError, match="ValidationError: .*adams2019_beam"):
        default_sampling({"adams2019_beam": {"count": 1}})
    with pytest.raises(SelectError, match="ValidationError: .*'beam_sise' was unexpected"):
        default_sampling({"near_default": {"count": 1, "beam_sise": 8}})
    with pytest.raises(SelectError, match="already"):
        default_sampling({next(iter(base["samplers"])): {"count": 1}})


def test_tune_takes_a_generator_with_its_params_and_times_its_own_schedule(model_dir, tmp_path, capsys,
                                                                            monkeypatch) -> None:  # fmt: skip
    import models.select as select
    from tests.pipelines.halide.generators import write_generator

    gen = write_generator(tmp_path / "scaled_blur.py", "perfgraph_test_tune_scaled_blur")
    # The CLI's sampling and timing, made small as above; everything else is what a user runs.
    monkeypatch.setattr(select, "default_sampling", lambda extra=None: dict(SAMPLING))
    monkeypatch.setattr(select, "default_timing", lambda: {**FAST_TIMING, "threads": 1})
    work = tmp_path / "work"
    assert main(["tune", f"{gen}:ScaledBlur", "-p", "taps=5", "--model", str(model_dir), "--work-dir", str(work),
                 "--top-k", "1", "--beam-size", "2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(("timed", "fastest"))}
    assert {"top1", "adams2019_beam", "manual"} <= set(rows), out
    assert " ms " in rows["manual"] and "x " in rows["manual"]  # measured, with its speedup
    record = __import__("json").loads((work / "tune.json").read_text())
    assert record["generator_params"] == {"taps": 5}
    assert "apply_schedule_scaled_blur_ScaledBlur_taps5" in (work / "schedule.h").read_text()
    # A generator whose scalar input has no estimate: one line naming the file and the input, exit 2.
    bad = write_generator(tmp_path / "no_estimate.py", "perfgraph_test_tune_no_estimate", scalar_estimate=False)
    assert main(["tune", str(bad), "--model", str(model_dir), "--work-dir", str(tmp_path / "w2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_estimate.py" in err[0] and "'gain'" in err[0]
    with pytest.raises(SystemExit):
        main(["tune", str(gen), "-p", "taps", "--model", str(model_dir)])
    assert "NAME=VALUE" in capsys.readouterr().err


def test_a_program_halide_cannot_schedule_is_one_line_not_a_traceback(model_dir, tmp_path, capsys) -> None:
    # Its input has estimates, so it builds; its output has none, which only Adams2019 finds,
    # in the forked child that dumps the DAG.
    no_output_estimates = tmp_path / "no_output_estimates.py"
    no_output_estimates.write_text(
        "import halide as hl\n"
        "def build():\n"
        "    img = hl.ImageParam(hl.Float(32), 2, 'img')\n"
        "    img.set_estimates([(0, 64), (0, 64)])\n"
        "    x, y = hl.Var('x'), hl.Var('y')\n"
        "    f = hl.Func('f')\n"
        "    f[x, y] = img[x, y] * 2\n"
        "    return f\n"
    )
    assert main(["predict", str(no_output_estimates), "--model", str(model_dir), "--work-dir", str(tmp_path / "w")]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("perfgraph: ")]
    assert len(err) == 1 and "no_output_estimates.py" in err[0] and "Adams2019" in err[0], err

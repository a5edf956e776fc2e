"""The config is validated against workflow/schemas before any job runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")


def default_config() -> dict:
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_shipped_configs_are_valid() -> None:
    for name in ("config.yaml", "paper.yaml", "large.yaml", "reference.yaml", "picks.yaml", "zoo_shaped.yaml", "local_random.yaml", "zoo_shaped_beam.yaml", "xeon_spr_a.yaml"):
        validate(yaml.safe_load((ROOT / "config" / name).read_text()), SCHEMA, set_default=True)


@pytest.mark.parametrize(
    "patch,key",
    [
        (lambda c: c["sampling"].update(bogus_key=1), "bogus_key"),
        (lambda c: c["programs"]["random"].update(count="many"), "many"),
        (lambda c: c["programs"]["random"].update(count=-3), "-3"),
        (lambda c: c["timing"].update(window_s=-1), "window_s"),
        (lambda c: c["timing"].update(aggregate="mean"), "mean"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(patch, key) -> None:
    cfg = default_config()
    patch(cfg)
    with pytest.raises(WorkflowError, match=key):
        validate(cfg, SCHEMA, set_default=True)


def test_bad_config_stops_snakemake_before_any_job(tmp_path) -> None:
    cfg = default_config()
    cfg["sampling"]["samplers"]["adams2019_dropout"]["count"] = -1
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--dry-run", "--cores", "1", "--configfile", str(tmp_path / "bad.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "-1 is less than the minimum of 0" in run.stdout + run.stderr
    assert "count" in run.stdout + run.stderr


def test_the_default_mix_reads_the_shipped_retrained_weights(monkeypatch) -> None:
    """The default config's retrained sampler names a weights file in the repository that
    Halide can read; the reference config, whose data trained it, leaves it out."""
    from pipelines.halide.samplers import plan_draws, weights_files

    monkeypatch.chdir(ROOT)
    cfg = default_config()
    validate(cfg, SCHEMA, set_default=True)
    assert weights_files(cfg["sampling"]) == ["datasets/reference/adams2019_retrained.weights"]
    mix, _ = plan_draws(cfg["sampling"], 1)
    retrained = [s for s in mix if s.draws[0].weights_file]
    assert [s.name for s in retrained] == ["adams2019_retrained"]
    assert len(retrained[0].draws[0].params["weights_sha256"]) == 16
    reference = yaml.safe_load((ROOT / "config/reference.yaml").read_text())
    merged = {**cfg["sampling"]["samplers"], **reference["sampling"]["samplers"]}  # Snakemake merges per sampler
    assert weights_files({"samplers": merged}) == []

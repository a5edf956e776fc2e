"""The TVM rule file plans the whole TVM flow (dry run), and stays off unless enabled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
dataset: tiny
tvm:
  enabled: {enabled}
  dataset: "{dataset}"
  programs:
    random: {{count: 2, first_seed: 0}}
    zoo: [bert_layer_norm]
  sampling: {{replay_trace: 2, evolutionary: 1}}
  models: [tvm_xgb, gcn]
timing: {{rounds: 2, window_s: 0.005, timeout_s: 30}}
"""


def _dry_run(tmp_path: Path, enabled: bool, dataset: str = "", *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "Snakefile").write_text(
        f'configfile: "config.yaml"\ninclude: "{ROOT}/workflow/rules/common.smk"\n'
        f'include: "{ROOT}/workflow/rules/tvm.smk"\n'
        "rule all:\n    input: get_tvm_final_output()\n"
    )
    (tmp_path / "config.yaml").write_text(CONFIG.format(enabled=str(enabled).lower(), dataset=dataset))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--cores",
        "2",
        "--directory",
        str(tmp_path),
        "--snakefile",
        str(tmp_path / "Snakefile"),
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)


@pytest.mark.write_disk
def test_dry_run_plans_every_rule(tmp_path) -> None:
    run = _dry_run(tmp_path, True)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout + run.stderr
    # models.seeds (3 by default) training runs of each model in one job, one evaluation job per model for all of them
    for rule, n in [("tvm_generate", 3), ("tvm_sample", 3), ("tvm_bench", 3), ("tvm_retime", 1), ("tvm_featurize", 1),
                    ("tvm_split", 1), ("tvm_train", 2), ("tvm_evaluate", 2), ("tvm_summarize", 1)]:  # fmt: skip
        assert any(line.split()[:2] == [rule, str(n)] for line in out.splitlines()), (rule, out[-3000:])
    assert "results/_work/tvm_tiny/tzoo_bert_layer_norm/entry.json" in out
    assert "results/models/tvm_tiny/gcn/seeds/2/meta.json" in out


@pytest.mark.write_disk
def test_a_published_dataset_is_trained_on_not_built(tmp_path) -> None:
    # -p prints the shell commands: the split and training read the published tables in place
    run = _dry_run(tmp_path, True, str(ROOT / "datasets/reference_tvm"), "-p")
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout + run.stderr
    for rule in ("tvm_generate", "tvm_sample", "tvm_bench", "tvm_featurize"):
        assert not any(line.split()[:1] == [rule] for line in out.splitlines()), rule
    for rule, n in [("tvm_split", 1), ("tvm_train", 2), ("tvm_evaluate", 2), ("tvm_summarize", 1)]:
        assert any(line.split()[:2] == [rule, str(n)] for line in out.splitlines()), (rule, out[-3000:])
    assert f"--dataset {ROOT}/datasets/reference_tvm" in out


@pytest.mark.write_disk
def test_disabled_builds_nothing(tmp_path) -> None:
    run = _dry_run(tmp_path, False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "tvm_sample" not in run.stdout + run.stderr

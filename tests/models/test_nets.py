from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import Batch

from featurize import schema
from models.halide.adams2019 import Adams2019
from models.base import RANK_LOSSES, lambda_rank_loss, listnet_loss, pairwise_rank_loss, scatter_logsumexp
from models.constants import CONV1_CHANNELS, HEAD1_H, HEAD1_W, PIPELINE_SKIP
from models.data import ProgramData
from models.halide.inputs import load_dataset
from models.gatv2 import GATv2
from models.gcn import GCN
from models.gine import GINE

SF = {n: i for i, n in enumerate(c[3:] for c in schema.SCHEDULE_COLUMNS)}


@pytest.fixture(scope="module")
def program(fake_dataset, fake_split) -> ProgramData:
    ds = load_dataset(fake_dataset, schema.read_table(fake_split, "split"))
    return next(p for p in ds.programs if p.num_nodes == 4)  # has a skip edge


#: withDevice-style: every device present (CUDA tests carry the ``gpu`` marker).
DEVICES = ["cpu"] + [pytest.param("cuda", marks=pytest.mark.gpu)] * torch.cuda.is_available()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "cls, text",
    [
        (GCN, "GCN(287+39, 16, num_layers=2)"),
        (GINE, "GINE(287+39, 16, num_layers=2)"),
        (GATv2, "GATv2(287+39, 16, num_layers=2, heads=4)"),
    ],
)
def test_gnn_forward_backward(cls, text, device, program) -> None:
    torch.manual_seed(0)
    model = cls(hidden_channels=16, num_layers=2).to(device)
    program = program.to(device)
    assert str(model) == text
    out = model.forward_program(program)
    assert out.size() == (program.num_schedules,)
    assert torch.isfinite(out).all()
    # The per-schedule PyG path gives the same predictions.
    batch = Batch.from_data_list(program.to_data_list())
    out2 = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
    torch.testing.assert_close(out, out2, rtol=1e-5, atol=1e-5)
    # Embedding the program once and scoring two halves equals scoring all at once.
    emb = model.embed_program(program)
    halves = torch.cat([model.forward_program(program.select([0, 1, 2]), emb), model.forward_program(program.select([3, 4, 5]), emb)])
    torch.testing.assert_close(out, halves, rtol=1e-5, atol=1e-5)
    loss = model.training_loss(program)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    model.reset_parameters()


def test_gatv2_rejects_bad_heads() -> None:
    with pytest.raises(ValueError, match="multiple of heads"):
        GATv2(hidden_channels=10, heads=4)


def test_scatter_logsumexp_and_rank_loss() -> None:
    src = torch.tensor([0.0, math.log(3.0), 5.0])
    out = scatter_logsumexp(src, torch.tensor([0, 0, 1]), 2)
    torch.testing.assert_close(out, torch.tensor([math.log(4.0), 5.0]))
    target = torch.tensor([1.0, 2.0])
    good = pairwise_rank_loss(torch.tensor([0.0, 10.0]), target)
    bad = pairwise_rank_loss(torch.tensor([10.0, 0.0]), target)
    assert good < 1e-3 and bad > 9.9
    # pairs never cross programs
    assert pairwise_rank_loss(torch.tensor([1.0, 0.0]), target, group=torch.tensor([0, 1])) == 0


def test_listwise_rank_losses_prefer_the_true_order_and_weigh_the_top() -> None:
    target = torch.tensor([0.0, 0.5, 1.0, 1.5])  # log seconds, schedule 0 fastest
    right, reversed_ = target.clone(), target.flip(0)
    for loss in (listnet_loss, lambda_rank_loss):
        assert loss(right, target) < loss(reversed_, target)
        # shifting every prediction of a program (its scale) changes nothing: ranking only
        torch.testing.assert_close(loss(right + 3.0, target), loss(right, target))
    # a swap at the top costs more than the same swap at the bottom
    top, bottom = torch.tensor([0.5, 0.0, 1.0, 1.5]), torch.tensor([0.0, 0.5, 1.5, 1.0])
    assert listnet_loss(top, target) > listnet_loss(bottom, target)
    assert lambda_rank_loss(top, target) > lambda_rank_loss(bottom, target)
    # two programs: each is its own list; one whose order is right adds (almost) nothing
    group = torch.tensor([0, 0, 1, 1])
    two = torch.tensor([0.0, 1.0, 0.0, 1.0])
    assert lambda_rank_loss(torch.tensor([0.0, 10.0, 10.0, 0.0]), two, group) > 0.4
    assert lambda_rank_loss(torch.tensor([0.0, 10.0, 0.0, 10.0]), two, group) < 1e-3
    assert set(RANK_LOSSES) == {"pairwise", "listnet", "lambdarank"}
    with pytest.raises(ValueError, match="rank_loss"):
        GATv2(rank_loss="softmax")


@pytest.mark.parametrize("device", DEVICES)
def test_adams2019_forward_backward(device, program) -> None:
    torch.manual_seed(0)
    model = Adams2019(num_cores=2).to(device)
    program = program.to(device)
    assert str(model) == "Adams2019((40x7)->8, 39->24, 32, num_cores=2)"
    out = model.forward_program(program)
    assert out.size() == (program.num_schedules,)
    torch.testing.assert_close(out, model(program.pf_raw, program.sf_raw))
    loss = model.training_loss(program)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 8 * 40 * 7 + 8 + 24 * 39 + 24 + 32 * 32 + 32
    with pytest.raises(ValueError, match="num_cores"):
        Adams2019(num_cores=0)


def test_adams2019_kept_cost_terms_follow_the_schedules(program) -> None:
    """Training keeps each program's cost terms (prepare_programs); a batch selected from the
    program must carry its own schedules' terms, and predict as if computed afresh."""
    torch.manual_seed(0)
    model = Adams2019(num_cores=2)
    prog = program.select(torch.arange(program.num_schedules))  # not the shared fixture
    model.prepare_programs([prog])
    assert set(prog.extra) == {"adams2019_terms_2"}
    order = torch.arange(prog.num_schedules).flip(0)
    batch = prog.select(order)
    torch.testing.assert_close(batch.extra["adams2019_terms_2"], model.cost_terms(batch.sf_raw))
    torch.testing.assert_close(model.forward_program(batch), model(batch.pf_raw, batch.sf_raw))
    # another core count is another set of terms, not the kept one
    other = Adams2019(num_cores=1)
    other.load_state_dict(model.state_dict())
    torch.testing.assert_close(other.forward_program(batch), other(batch.pf_raw, batch.sf_raw))


def _fixed_coefficients(model: Adams2019, coef: torch.Tensor) -> None:
    """Make every stage's relu1 equal ``coef``: zero embeddings, coefficients from the bias."""
    with torch.no_grad():
        model.head1_filter.fill_(-100.0)  # sigmoid -> 0
        model.head1_bias.zero_()
        model.head2_filter.zero_()
        model.head2_bias.zero_()
        model.conv1_filter.zero_()
        model.conv1_bias.copy_(coef)


def test_adams2019_cost_terms_by_hand() -> None:
    model = Adams2019(num_cores=2)
    sf = torch.zeros(1, 2, 39)
    for w in range(2):
        sf[0, w, SF["vector_size"]] = 8
        sf[0, w, SF["num_vectors"]] = 100
        sf[0, w, SF["inner_parallelism"]] = 3
        sf[0, w, SF["outer_parallelism"]] = 1
        sf[0, w, SF["num_realizations"]] = 2
        sf[0, w, SF["bytes_at_task"]] = 640
        sf[0, w, SF["innermost_bytes_at_task"]] = 64
    pf = torch.zeros(2, 287)

    coef = torch.zeros(CONV1_CHANNELS)
    coef[0] = 1.0  # vector compute, not inlined
    _fixed_coefficients(model, coef)
    # 8 * 100 per stage, times idle-core wastage ceil(3/2) / (3/2) = 4/3, two stages
    expected = 2 * 800 * (4 / 3) * 1e-9
    torch.testing.assert_close(model(pf, sf), torch.tensor([expected]))

    # stores of a parallel stage use coefficient 16 (alpha); false sharing 22 is zero here
    coef = torch.zeros(CONV1_CHANNELS)
    coef[16] = 1.0
    _fixed_coefficients(model, coef)
    lines = 3 * 640 / 64
    expected = 2 * (2 * lines) * 2 * 1e-9  # two stages, num_realizations * lines, doubled
    torch.testing.assert_close(model(pf, sf), torch.tensor([expected]))

    # serial stages: the output stage (w == 0) uses 17, the others 18
    sf[..., SF["inner_parallelism"]] = 1
    coef = torch.zeros(CONV1_CHANNELS)
    coef[17] = 1.0
    _fixed_coefficients(model, coef)
    lines = 1 * 640 / 64
    torch.testing.assert_close(model(pf, sf), torch.tensor([2 * lines * 2 * 1e-9]))


def test_adams2019_pipeline_layout() -> None:
    model = Adams2019()
    with torch.no_grad():
        model.head1_filter.fill_(-100.0)
        model.head1_filter[:, 5, 3] = 100.0
        model.head1_bias.zero_()
        model.conv1_filter.zero_()
        model.conv1_filter[0, 0] = 1.0
        model.conv1_bias.zero_()
    pf = torch.zeros(1, 287)
    pf[0, PIPELINE_SKIP + 5 * HEAD1_H + 3] = 2.0  # row 5 (of 40), scalar type 3 (of 7)
    pf[0, :PIPELINE_SKIP] = 1.0  # types_in_use: ignored
    stage1 = model.embed_pipeline(pf)
    assert stage1[0, 0].item() == pytest.approx(2.0)
    assert HEAD1_W * HEAD1_H == 280


def test_adams2019_loss_by_hand() -> None:
    pred = torch.tensor([2.0, 4.0])
    true = torch.tensor([1.0, 2.0])
    conv = torch.zeros(2, 1, CONV1_CHANNELS)
    loss = Adams2019.relative_throughput_loss(pred, true, conv)
    assert loss.item() == pytest.approx((1 / 2 - 1) ** 2 + (1 / 4 - 1 / 2) ** 2)
    conv[0, 0, 0] = -3.0  # negative pre-ReLU coefficients are regularized
    loss2 = Adams2019.relative_throughput_loss(pred, true, conv)
    assert loss2.item() == pytest.approx(loss.item() + 3e-5)


@pytest.mark.parametrize("cls", [GCN, GINE, GATv2])
def test_gnn_single_stage_program(cls) -> None:
    prog = ProgramData(
        "p", "test", torch.zeros(1, 287), torch.zeros(1, 287), torch.zeros(2, 0, dtype=torch.long),
        torch.zeros(0, 15), ["a", "b"], torch.ones(2, 1, 39), torch.randn(2, 1, 39), torch.ones(2, dtype=torch.float64),
    )
    model = cls(hidden_channels=8, num_layers=1)
    out = model.forward_program(prog)
    assert out.shape == (2,) and torch.isfinite(out).all()


def test_adams2019_with_halide_weights_matches_halide() -> None:
    """With Halide's shipped weights, our model gives the cost Halide's autoscheduler logged
    for the same schedule ("Best cost: 0.101851"): architecture, cost terms and weight
    layout all match."""
    import importlib.util
    import json
    from pathlib import Path

    import numpy as np

    from featurize.halide.features import decode_featurization

    if importlib.util.find_spec("halide") is None:
        pytest.skip("halide is not installed")
    here = Path(__file__).parent / "data"
    info = json.loads((here / "adams2019_featurization.json").read_text())
    recs = np.array(decode_featurization((here / "adams2019_featurization.bin").read_bytes()), dtype=np.float32)
    sf, pf = torch.from_numpy(recs[:, :39]).unsqueeze(0), torch.from_numpy(recs[:, 39:])
    model = Adams2019(num_cores=info["sampler_params"]["parallelism"], init="halide")
    assert str(model) == "Adams2019((40x7)->8, 39->24, 32, num_cores=2, init='halide')"
    with torch.no_grad():
        cost = model(pf, sf).item()
    assert cost == pytest.approx(info["logged_best_cost"], abs=1e-6)


@pytest.mark.parametrize("cls", [GCN, GINE, GATv2])
def test_gnn_several_programs_in_one_pass(cls, fake_dataset, fake_split) -> None:
    progs = load_dataset(fake_dataset, schema.read_table(fake_split, "split")).programs[:3]
    torch.manual_seed(0)
    model = cls(hidden_channels=8, num_layers=2)
    together = model.forward_programs(progs)
    alone = torch.cat([model.forward_program(p) for p in progs])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    model.training_loss(progs).backward()

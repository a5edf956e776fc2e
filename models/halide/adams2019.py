"""Halide's Adams2019 cost model, in PyTorch, retrained on our data.

Written from the public description and sources of halide/Halide
(``src/autoschedulers/adams2019/cost_model_generator.cpp``, ``NetworkSize.h``,
``DefaultCostModel.cpp``, ``Weights.cpp``); sizes in :mod:`models.constants`.

Per stage ``w`` of a program and schedule ``n``:

1. **Pipeline embedding** (``head1``): the 280 pipeline features after
   ``types_in_use`` (laid out as a 40 x 7 grid, op/access kind by scalar type) are
   weighted by ``sigmoid(head1_filter)`` -- positive, bounded weights -- plus a bias:
   8 channels. No ReLU: inputs and weights are positive.
2. **Schedule embedding** (``head2``): ``log(x + 1)`` of the 39 schedule features,
   a linear layer and a ReLU: 24 channels.
3. **Coefficients** (``conv1``): a linear layer over the 8 + 24 channels and a ReLU:
   32 non-negative coefficients. The pipeline half is schedule-independent and is
   computed once per program (:meth:`Adams2019.embed_program`), as Halide does.
4. **Cost terms**: the coefficients weight hand-designed terms built from the *raw*
   schedule features: vector and scalar compute (separately when inlined), scaled by
   idle-core wastage; eleven load terms; stores (with separate coefficients for
   stages with inner parallelism and for the output stage ``w == 0``); false sharing
   of cache lines and of pages; malloc; parallel launches and tasks; working set.
   The store cost is doubled, as in Halide's shipped model (a historical quirk kept
   so its weights stay valid). The stage cost is scaled by ``1e-9``.
5. The prediction is the sum over stages.

Training follows Halide: a batch is the schedules of one program; the loss is the
sum over the batch of ``(1/p - 1/r)^2`` where ``p`` and ``r`` are the predicted and
true run times divided by the true run time of the batch's fastest schedule (L2 on
relative throughput), plus ``1e-5`` times the negative part of the pre-ReLU
coefficients (keeps ReLUs from dying); Adam with ``eps = 1e-5``; weights initialized
uniform in ``[-0.5, 0.5]``. True run times are in milliseconds, as in Halide's
samples, so the prediction is in milliseconds.

Deliberate differences, for our small datasets: the learning rate defaults to
``1e-3`` (Halide's retrain default is ``1e-4`` over far more data), programs with
fewer than 8 schedules are not skipped, and training stops early on validation loss.

Initialization: ``init="random"`` (default; Halide's ``--randomize_weights``) trains
on our data only, like every other model here. ``init="halide"`` starts from the
weights Halide ships (``baseline.weights``, embedded in the autoscheduler plugin of
the ``halide`` wheel and read from there by :func:`halide_baseline_weights`), as
Halide's own autotuning loop does before retraining; with ``epochs=0`` that is
Halide's cost model as shipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor
from torch.nn import Parameter

from featurize.halide.features import SCHEDULE_FEATURE_NAMES
from models.constants import (
    CONV1_CHANNELS,
    HEAD1_CHANNELS,
    HEAD1_H,
    HEAD1_W,
    HEAD2_CHANNELS,
    HEAD2_W,
    PIPELINE_SKIP,
)
from models.data import ProgramData
from pipelines.halide.samplers import WEIGHT_SHAPES, shipped_weights, weights_bytes, weights_from_bytes

_F = {name: i for i, name in enumerate(SCHEDULE_FEATURE_NAMES)}

#: Tensor order of Halide's ``Weights::save`` (the weights format is pipelines.halide.samplers').
_WEIGHT_NAMES = tuple(WEIGHT_SHAPES)


def _as_tensors(weights: dict) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(arr) for name, arr in weights.items()}


def parse_weights(data: bytes, offset: int = 0) -> dict[str, torch.Tensor]:
    """Parse Halide's ``.weights`` format (:func:`pipelines.halide.samplers.weights_from_bytes`,
    its one reader) into our parameter layout, as tensors."""
    return _as_tensors(weights_from_bytes(data, offset))


def halide_baseline_weights(library: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The weights Halide ships with Adams2019 (:func:`pipelines.halide.samplers.shipped_weights`,
    read from the installed ``halide`` package's plugin), as tensors."""
    return _as_tensors(shipped_weights(library))


@dataclass
class Adams2019Embedding:
    """What Adams2019 computes once per program: ``conv1_stage1`` (``[n, 32]``)."""

    conv1_stage1: Tensor


class Adams2019(torch.nn.Module):
    r"""The Adams2019 cost model of Halide's autoscheduler, from `"Learning to Optimize
    Halide with Tree Search and Random Programs" <https://doi.org/10.1145/3306346.3322967>`_.

    Args:
        num_cores (int, optional): Cores of the target machine, for idle-core wastage.
            (default: :obj:`1`)
        init (str, optional): ``"random"`` (uniform in [-0.5, 0.5], as Halide's
            ``Weights::randomize``) or ``"halide"`` (Halide's shipped weights).
            (default: :obj:`"random"`)
    """

    def __init__(
        self,
        num_cores: int = 1,
        init: str = "random",
    ) -> None:
        super().__init__()
        if num_cores < 1:
            raise ValueError(f"num_cores must be >= 1, got {num_cores}")
        if init not in ("random", "halide"):
            raise ValueError(f"init must be 'random' or 'halide', got {init!r}")
        self.num_cores = num_cores
        self.init = init
        self.head1_filter = Parameter(torch.empty(HEAD1_CHANNELS, HEAD1_W, HEAD1_H))
        self.head1_bias = Parameter(torch.empty(HEAD1_CHANNELS))
        self.head2_filter = Parameter(torch.empty(HEAD2_CHANNELS, HEAD2_W))
        self.head2_bias = Parameter(torch.empty(HEAD2_CHANNELS))
        self.conv1_filter = Parameter(torch.empty(CONV1_CHANNELS, HEAD1_CHANNELS + HEAD2_CHANNELS))
        self.conv1_bias = Parameter(torch.empty(CONV1_CHANNELS))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init == "halide":
            weights = halide_baseline_weights()
            with torch.no_grad():
                for name, value in weights.items():
                    getattr(self, name).copy_(value)
            return
        # Weights::randomize: every weight uniform in [-0.5, 0.5].
        for p in self.parameters():
            torch.nn.init.uniform_(p, -0.5, 0.5)

    # -- network ---------------------------------------------------------------------------
    def embed_program(self, prog: ProgramData) -> Adams2019Embedding:
        """Pipeline-feature embedding and its contribution to the coefficients."""
        return Adams2019Embedding(self.embed_pipeline(prog.pf_raw))

    def embed_pipeline(self, pf_raw: Tensor) -> Tensor:
        """``[n, 287]`` raw pipeline features -> ``conv1_stage1`` ``[n, 32]``."""
        pf = pf_raw[:, PIPELINE_SKIP:].reshape(-1, HEAD1_W, HEAD1_H)
        head1 = self.head1_bias + torch.einsum("cxy,nxy->nc", torch.sigmoid(self.head1_filter), pf)
        return self.conv1_bias + head1 @ self.conv1_filter[:, :HEAD1_CHANNELS].T

    def coefficients(self, conv1_stage1: Tensor, sf_raw: Tensor) -> Tensor:
        """Pre-ReLU coefficients ``conv1_stage2``, ``[S, n, 32]``."""
        head2 = torch.relu(self.head2_bias + torch.log(sf_raw + 1) @ self.head2_filter.T)
        return conv1_stage1.unsqueeze(0) + head2 @ self.conv1_filter[:, HEAD1_CHANNELS:].T

    def cost_terms(self, sf_raw: Tensor) -> Tensor:
        """The hand-designed cost terms, ``[S, n, 32]``: what each coefficient multiplies.

        Every term of Halide's stage cost is one coefficient times a function of the raw
        schedule features (the ``where`` choices too: a mask per branch), so the terms do
        not depend on the weights and a program's schedules need them once
        (:meth:`prepare_programs`). Channels 4 and 28-31 weigh nothing, as in Halide.
        """
        f = {name: sf_raw[..., i] for name, i in _F.items()}
        one = torch.ones_like(f["inner_parallelism"])
        zero = torch.zeros_like(one)
        inner, outer = f["inner_parallelism"], f["outer_parallelism"]
        nv, ns, vs = f["num_vectors"], f["num_scalars"], f["vector_size"]
        nreal = f["num_realizations"]
        is_output = torch.zeros_like(one, dtype=torch.bool)
        is_output[..., 0] = True  # stage 0 of the featurization is the output's last stage
        t = [zero] * CONV1_CHANNELS

        # compute, separately when inlined, scaled by idle-core wastage
        num_tasks = torch.maximum(one, inner * outer)
        tasks_per_core = num_tasks / self.num_cores
        idle_core_wastage = torch.ceil(tasks_per_core) / torch.maximum(one, tasks_per_core)
        vector_ops, scalar_ops = vs * nv * idle_core_wastage, ns * idle_core_wastage
        not_inlined = f["inlined_calls"] == 0
        t[0], t[1] = torch.where(not_inlined, vector_ops, zero), torch.where(not_inlined, scalar_ops, zero)
        t[2], t[3] = torch.where(not_inlined, zero, vector_ops), torch.where(not_inlined, zero, scalar_ops)

        # loads
        t[5] = nreal * f["unique_lines_read_per_realization"]
        t[6] = nreal * f["unique_bytes_read_per_realization"]
        t[7] = nv * f["scalar_loads_per_vector"]
        t[8] = ns * f["scalar_loads_per_scalar"]
        t[9] = nv * f["vector_loads_per_vector"]
        t[10] = ns * f["unique_bytes_read_per_vector"]
        t[11] = nv * f["unique_bytes_read_per_vector"]
        t[12] = ns * f["unique_lines_read_per_vector"]
        t[13] = nv * f["unique_lines_read_per_vector"]
        t[14] = num_tasks * f["unique_bytes_read_per_task"]
        t[15] = num_tasks * f["unique_lines_read_per_task"]

        # stores: lines written (alpha) and bytes (beta), by parallel / output / other stage;
        # false sharing; page faults. Doubled, as in Halide's shipped model.
        inner_bytes_task = torch.maximum(one, f["innermost_bytes_at_task"])
        lines = nreal * inner * (f["bytes_at_task"] / inner_bytes_task)
        bytes_ = nreal * f["bytes_at_realization"]
        parallel = inner > 1
        serial_output, serial_other = ~parallel & is_output, ~parallel & ~is_output
        for k, kind in zip((16, 17, 18), (parallel, serial_output, serial_other)):
            t[k] = 2 * torch.where(kind, lines, zero)
            t[k + 3] = 2 * torch.where(kind, bytes_, zero)
        t[22] = 2 * torch.where(parallel, (nv + ns) / inner_bytes_task, zero)
        max_threads_hitting_same_page = torch.minimum(inner, 4096 / inner_bytes_task)
        t[23] = 2 * f["bytes_at_production"] * max_threads_hitting_same_page * inner * outer

        # malloc, parallel launches and tasks, working set
        t[24] = nreal
        t[25] = f["num_productions"] * torch.where(parallel, one, zero)
        t[26] = f["num_productions"] * (inner - 1)
        t[27] = f["working_set"]
        return torch.stack(t, dim=-1)

    def stage_costs(self, relu1: Tensor, terms: Tensor) -> Tensor:
        """Cost of each stage, ``[S, n]`` (before the ``1e-9`` scale): coefficients times
        :meth:`cost_terms`."""
        return (relu1 * terms).sum(dim=-1)

    def terms_of(self, prog: ProgramData) -> Tensor:
        """``prog``'s cost terms: those :meth:`prepare_programs` kept, else computed."""
        terms = prog.extra.get(self._terms_key)
        return terms if terms is not None else self.cost_terms(prog.sf_raw)

    @property
    def _terms_key(self) -> str:
        return f"adams2019_terms_{self.num_cores}"  # idle-core wastage depends on the cores

    @torch.no_grad()
    def prepare_programs(self, progs: Sequence[ProgramData]) -> None:
        """Compute each program's cost terms once and keep them with its schedules (training
        steps select from them): the weights change every step, the terms never."""
        for prog in progs:
            if self._terms_key not in prog.extra:
                prog.extra[self._terms_key] = self.cost_terms(prog.sf_raw)

    def forward(self, pf_raw: Tensor, sf_raw: Tensor) -> Tensor:
        """Predicted run time (ms) of ``S`` schedules of one program.

        Args:
            pf_raw (torch.Tensor): Raw pipeline features ``[n, 287]``.
            sf_raw (torch.Tensor): Raw schedule features ``[S, n, 39]``.
        """
        return self._predict(self.embed_pipeline(pf_raw), sf_raw, self.cost_terms(sf_raw))[0]

    def _predict(self, conv1_stage1: Tensor, sf_raw: Tensor, terms: Tensor) -> tuple[Tensor, Tensor]:
        conv1_stage2 = self.coefficients(conv1_stage1, sf_raw)
        cost = self.stage_costs(torch.relu(conv1_stage2), terms)
        return (cost * 1e-9).sum(dim=-1), conv1_stage2

    def forward_program(self, prog: ProgramData, emb: Adams2019Embedding | None = None) -> Tensor:
        """Predicted run time in milliseconds of each of ``prog``'s schedules, ``[S]``."""
        if emb is None:
            emb = self.embed_program(prog)
        return self._predict(emb.conv1_stage1, prog.sf_raw, self.terms_of(prog))[0]

    # -- training --------------------------------------------------------------------------
    @staticmethod
    def relative_throughput_loss(pred_ms: Tensor, true_ms: Tensor, conv1_stage2: Tensor) -> Tensor:
        """Halide's loss for one batch of schedules of one program (a sum over the batch)."""
        scale = 1.0 / true_ms.min()
        p1 = pred_ms * scale
        r1 = true_ms * scale
        delta = (1.0 / torch.clamp(p1, min=1e-10) - 1.0 / r1) ** 2
        regularize = (-torch.clamp(conv1_stage2, max=0)).sum(dim=(1, 2))
        return (delta + 1e-5 * regularize).sum()

    def training_loss(self, progs: ProgramData | Sequence[ProgramData]) -> Tensor:
        """Halide's loss, summed over the given batches (each: schedules of one program,
        with its own fastest schedule as the reference)."""
        progs = [progs] if isinstance(progs, ProgramData) else list(progs)
        total = 0.0
        for prog in progs:
            pred, conv1_stage2 = self._predict(self.embed_pipeline(prog.pf_raw), prog.sf_raw, self.terms_of(prog))
            true_ms = (prog.runtime * 1e3).to(pred.dtype).to(pred.device)
            total = total + self.relative_throughput_loss(pred, true_ms, conv1_stage2)
        return total

    @staticmethod
    def to_seconds(out: Tensor) -> Tensor:
        return out.double() * 1e-3

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(({HEAD1_W}x{HEAD1_H})->{HEAD1_CHANNELS}, "
            f"{HEAD2_W}->{HEAD2_CHANNELS}, {CONV1_CHANNELS}, num_cores={self.num_cores}"
            + (f", init={self.init!r})" if self.init != "random" else ")")
        )


def export_halide_weights(model: Adams2019, path: str | Path) -> Path:
    """Write ``model``'s weights as Halide's ``.weights`` file (what the Adams2019
    autoscheduler's ``weights_path`` reads): Halide's autotune loop samples with its
    retrained model the same way. The network is Halide's own, so the file is usable as is."""
    from featurize.schema import atomic_write_bytes

    weights = {name: getattr(model, name).detach().cpu().numpy() for name in _WEIGHT_NAMES}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda tmp: Path(tmp).write_bytes(weights_bytes(weights)))
    return path

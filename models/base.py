"""Shared parts of the torch cost models: the program/schedule split of the input,
readouts and losses.

Every torch cost model scores the schedules of one program with
``forward_program(prog, emb)``, where ``emb = model.embed_program(prog)`` holds what
depends only on the program (computed once, however many schedules are scored).
The GNNs also keep PyG's usual ``forward(x, edge_index, edge_attr, batch)`` on
batched per-schedule graphs (:meth:`models.data.ProgramData.to_data_list`); both
paths share their weights and agree to float precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear
from torch_geometric.utils import scatter

from models.constants import EDGE_DIM, NUM_PIPELINE_FEATURES, NUM_SCHEDULE_FEATURES
from models.data import ProgramData

#: Edge features the GNNs see: ``edge_attr`` plus a forward/backward direction flag,
#: since every producer -> consumer edge is also passed consumer -> producer.
GNN_EDGE_DIM = EDGE_DIM + 2


def bidirectional(edge_index: Tensor, edge_attr: Tensor) -> tuple[Tensor, Tensor]:
    """Append every edge reversed; mark direction with two flag columns."""
    e = edge_index.size(1)
    fwd = edge_attr.new_zeros(e, 2)
    fwd[:, 0] = 1
    bwd = edge_attr.new_zeros(e, 2)
    bwd[:, 1] = 1
    ei = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    ea = torch.cat([torch.cat([edge_attr, fwd], 1), torch.cat([edge_attr, bwd], 1)], 0)
    return ei, ea


def repeat_graph(edge_index: Tensor, num_nodes: int, copies: int) -> tuple[Tensor, Tensor]:
    """``edge_index`` of ``copies`` disjoint copies of one graph, and the node -> copy ``batch`` vector."""
    e = edge_index.size(1)
    offsets = (torch.arange(copies, device=edge_index.device) * num_nodes).repeat_interleave(e)
    ei = edge_index.repeat(1, copies) + offsets
    batch = torch.arange(copies, device=edge_index.device).repeat_interleave(num_nodes)
    return ei, batch


def scatter_logsumexp(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """``log(sum(exp(src)))`` per group, numerically stable. ``src`` is ``[N]``."""
    m = scatter(src.detach(), index, dim=0, dim_size=dim_size, reduce="max")
    s = scatter((src - m[index]).exp(), index, dim=0, dim_size=dim_size, reduce="sum")
    return m + s.log()


def regression_loss(pred: Tensor, target: Tensor, kind: str) -> Tensor:
    """Error of log run time: ``"mse"`` (squared log error) or ``"l1"`` (absolute log error,
    which is about the relative error for small errors)."""
    if kind == "mse":
        return F.mse_loss(pred, target)
    if kind == "l1":
        return F.l1_loss(pred, target)
    raise ValueError(f"unknown regression loss {kind!r}")


def pairwise_rank_loss(pred: Tensor, target: Tensor, group: Tensor | None = None) -> Tensor:
    r"""RankNet loss over pairs of schedules of the same program.

    For every pair with ``target_i < target_j`` (``i`` is faster), adds
    :math:`\log(1 + e^{-(pred_j - pred_i)})`; averaged over pairs. ``group`` (program
    index per schedule) restricts pairs to one program; ``None`` means one program."""
    dt = target.unsqueeze(1) - target.unsqueeze(0)  # [S, S], t_i - t_j
    dp = pred.unsqueeze(1) - pred.unsqueeze(0)
    mask = dt < 0
    if group is not None:
        mask &= group.unsqueeze(1) == group.unsqueeze(0)
    if not mask.any():
        return pred.sum() * 0.0
    return F.softplus(dp[mask]).mean()  # want p_i - p_j < 0


def listnet_loss(pred: Tensor, target: Tensor, group: Tensor | None = None, temperature: float = 0.1) -> Tensor:
    r"""ListNet (top-one probability) loss within each program: the cross-entropy between
    :math:`\mathrm{softmax}(-t / T)` of the true log run times and :math:`\mathrm{softmax}(-p / T)`
    of the predicted ones, over a program's schedules; averaged over programs. ``T`` in log
    seconds (0.1: a schedule 10% slower than another has about a third of its weight), so the
    loss is about which schedules are fastest, as a user's pick is."""
    if group is None:
        group = torch.zeros_like(target, dtype=torch.long)
    n_groups = int(group.max()) + 1
    log_p = -pred / temperature - scatter_logsumexp(-pred / temperature, group, n_groups)[group]
    log_q = -target / temperature - scatter_logsumexp(-target / temperature, group, n_groups)[group]
    ce = -scatter(log_q.exp() * log_p, group, dim=0, dim_size=n_groups, reduce="sum")
    return ce.mean()


def lambda_rank_loss(pred: Tensor, target: Tensor, group: Tensor | None = None) -> Tensor:
    r"""RankNet's pair loss weighted toward the top of each program's true ranking
    (LambdaRank's idea, with NDCG's discount): a pair ``(i, j)`` weighs
    :math:`|1/\log_2(2 + r_i) - 1/\log_2(2 + r_j)|`, ``r`` the true rank within the program
    (0: fastest), so misordering the fastest schedules costs most; normalized by the weights' sum."""
    if group is None:
        group = torch.zeros_like(target, dtype=torch.long)
    dt = target.unsqueeze(1) - target.unsqueeze(0)
    same = group.unsqueeze(1) == group.unsqueeze(0)
    rank = ((dt > 0) & same).sum(dim=1).to(pred.dtype)  # schedules of its program faster than it
    gain = 1.0 / torch.log2(2.0 + rank)
    mask = (dt < 0) & same
    if not mask.any():
        return pred.sum() * 0.0
    w = (gain.unsqueeze(1) - gain.unsqueeze(0)).abs()[mask]
    dp = (pred.unsqueeze(1) - pred.unsqueeze(0))[mask]
    return (w * F.softplus(dp)).sum() / w.sum().clamp_min(1e-12)


#: The within-program ranking losses a GNN can add to its regression loss (``rank_loss``).
RANK_LOSSES = {"pairwise": pairwise_rank_loss, "listnet": listnet_loss, "lambdarank": lambda_rank_loss}


@dataclass
class GraphEmbedding:
    """What a GNN computes once per program."""

    h_pipe: Tensor  # [n, H], pipeline-feature part of the first layer
    edge_index: Tensor  # [2, E'], bidirectional, after prepare_graph
    edge_attr: Tensor  # [E', d], after prepare_graph
    num_nodes: int
    machine_offset: Tensor | int = 0  # [], the machine's log-time offset (models of several machines)
    _batched: dict = field(default_factory=dict)  # copies -> (edge_index, batch)

    def batched(self, copies: int) -> tuple[Tensor, Tensor]:
        if copies not in self._batched:
            if len(self._batched) >= 4:  # a search asks for many sizes; training for one or two
                self._batched.clear()
            self._batched[copies] = repeat_graph(self.edge_index, self.num_nodes, copies)
        return self._batched[copies]


class GraphCostModel(torch.nn.Module):
    r"""Base of the GNN cost models: predicts the log run time (seconds) of a schedule
    from its stage graph.

    The first layer is linear in the node features ``[pipeline | schedule]``; it is
    held as two linear maps so the pipeline half is computed once per program.
    Subclasses implement :meth:`propagate_and_read` (message passing + readout).

    Args:
        hidden_channels (int): Width of the node embeddings.
        num_layers (int): Number of message-passing layers.
        dropout (float, optional): Dropout after each layer. (default: :obj:`0.0`)
        loss (str, optional): ``"mse"`` or ``"l1"`` on log run time. (default: :obj:`"mse"`)
        rank_weight (float, optional): Weight of the ranking loss. (default: :obj:`0.0`)
        rank_loss (str, optional): Which ranking loss (:data:`RANK_LOSSES`): ``"pairwise"``
            (RankNet over every pair of a program's schedules), ``"listnet"`` or
            ``"lambdarank"`` (both weigh the fastest schedules most). (default: ``"pairwise"``)
        machine_dim (int, optional): Width of the machine features read (:mod:`models.machine`;
            ``0``: a model of one machine, which reads none). The machine's features enter
            twice: projected into every stage's first-layer state, so the whole stage graph
            is read in the light of the machine, and as a per-machine offset of the log
            run time (its overall speed). (default: :obj:`0`)
    """

    def __init__(
        self,
        hidden_channels: int,
        num_layers: int,
        dropout: float = 0.0,
        loss: str = "mse",
        rank_weight: float = 0.0,
        machine_dim: int = 0,
        rank_loss: str = "pairwise",
    ) -> None:
        super().__init__()
        if rank_loss not in RANK_LOSSES:
            raise ValueError(f"unknown rank_loss {rank_loss!r}; choose from {', '.join(RANK_LOSSES)}")
        self.rank_loss = rank_loss
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.loss_kind = loss
        self.rank_weight = rank_weight
        self.machine_dim = machine_dim
        self.pipe_lin = Linear(NUM_PIPELINE_FEATURES, hidden_channels)
        self.sched_lin = Linear(NUM_SCHEDULE_FEATURES, hidden_channels, bias=False)
        self.machine_lin = Linear(machine_dim, hidden_channels, bias=False) if machine_dim else None
        self.machine_offset = Linear(machine_dim, 1, bias=False) if machine_dim else None
        # Added to every prediction; the trainer sets it to the mean training target, so
        # the network starts near the right scale (log seconds are around -10 to 0).
        self.register_buffer("y_shift", torch.zeros(()))

    def reset_parameters(self) -> None:
        self.pipe_lin.reset_parameters()
        self.sched_lin.reset_parameters()
        if self.machine_dim:
            self.machine_lin.reset_parameters()
            torch.nn.init.zeros_(self.machine_offset.weight)

    def _machine_terms(self, machine: Tensor | None, like: Tensor) -> tuple[Tensor | int, Tensor | int]:
        """The machine's first-layer term ``[H]`` and log-time offset ``[]`` (0, 0 for a model
        of one machine). A model of several machines needs to be told the machine."""
        if not self.machine_dim:
            return 0, 0
        if machine is None:
            raise ValueError(f"{self.__class__.__name__} reads machine features: the program has none (machine_id)")
        machine = machine.to(like.device, like.dtype)
        return self.machine_lin(machine), self.machine_offset(machine).squeeze(-1)

    # -- subclasses ----------------------------------------------------------------------
    def prepare_graph(self, edge_index: Tensor, edge_attr: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
        """Schedule-independent edge preprocessing (self loops, normalization), done once
        per program on the fast path. Must act on each graph of a batch independently."""
        return edge_index, edge_attr

    def propagate_and_read(
        self, h: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor, num_graphs: int
    ) -> Tensor:
        """Message passing from first-layer node states ``h`` to one value per graph."""
        raise NotImplementedError

    # -- PyG path ------------------------------------------------------------------------
    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor,
        batch: Tensor | None = None,
        num_graphs: int | None = None,
        machine: Tensor | None = None,
    ) -> Tensor:
        """Predicted log run time per graph, ``[num_graphs]``.

        Args:
            x (torch.Tensor): Node features ``[N, 287 + 39]`` (pipeline, then schedule).
            edge_index (torch.Tensor): Producer -> consumer edges ``[2, E]``.
            edge_attr (torch.Tensor): Edge features ``[E, EDGE_DIM]``.
            batch (torch.Tensor, optional): Graph of each node. (default: one graph)
            num_graphs (int, optional): Number of graphs in the batch.
            machine (torch.Tensor, optional): Machine features per graph ``[num_graphs,
                machine_dim]`` (models of several machines only).
        """
        if batch is None:
            batch = x.new_zeros(x.size(0), dtype=torch.long)
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        h = self.pipe_lin(x[:, :NUM_PIPELINE_FEATURES]) + self.sched_lin(x[:, NUM_PIPELINE_FEATURES:])
        m_node, m_offset = self._machine_terms(machine, h)
        if self.machine_dim:
            h = h + m_node[batch]
        ei, ea = self.prepare_graph(*bidirectional(edge_index, edge_attr), x.size(0))
        return self.propagate_and_read(h, ei, ea, batch, num_graphs) + self.y_shift + m_offset

    # -- program path --------------------------------------------------------------------
    def embed_program(self, prog: ProgramData) -> GraphEmbedding:
        """The schedule-independent part: pipeline-feature projection (with the machine's
        term, for a model of several machines), the machine's offset, and edges."""
        # The edges depend on the program and the model's kind only: prepared once per program
        # (with the repeated copies a batch of schedules needs), reused by every training step.
        key = f"{type(self).__name__}.graph"
        if key not in prog.fixed:
            ei, ea = self.prepare_graph(*bidirectional(prog.edge_index, prog.edge_attr), prog.num_nodes)
            prog.fixed[key] = (ei, ea, {})
        ei, ea, batched = prog.fixed[key]
        h_pipe = self.pipe_lin(prog.x_pipe)
        m_node, m_offset = self._machine_terms(prog.machine, h_pipe)
        return GraphEmbedding(h_pipe + m_node, ei, ea, prog.num_nodes, m_offset, batched)

    def forward_program(self, prog: ProgramData, emb: GraphEmbedding | None = None) -> Tensor:
        """Predicted log run time (seconds) of each of ``prog``'s schedules, ``[S]``."""
        return self.forward_programs([prog], None if emb is None else [emb])

    def forward_programs(
        self, progs: Sequence[ProgramData], embs: Sequence[GraphEmbedding] | None = None
    ) -> Tensor:
        """Predictions for the schedules of several programs in one pass, concatenated
        in order (``[sum of S]``): the graphs of all schedules form one disjoint batch."""
        if embs is None:
            embs = [self.embed_program(p) for p in progs]
        hs, eis, eas, batches, offsets = [], [], [], [], []
        node_off = graph_off = 0
        for prog, emb in zip(progs, embs):
            s, n = prog.num_schedules, prog.num_nodes
            hs.append((emb.h_pipe.unsqueeze(0) + self.sched_lin(prog.x_sched)).reshape(s * n, -1))
            ei, batch = emb.batched(s)
            eis.append(ei + node_off)
            batches.append(batch + graph_off)
            eas.append(emb.edge_attr.repeat(s, 1))
            offsets.append(emb.machine_offset * emb.h_pipe.new_ones(s) if self.machine_dim else None)
            node_off += s * n
            graph_off += s
        if len(progs) == 1:
            h, ei, ea, batch = hs[0], eis[0], eas[0], batches[0]
        else:
            h, ei, ea, batch = torch.cat(hs), torch.cat(eis, 1), torch.cat(eas), torch.cat(batches)
        out = self.propagate_and_read(h, ei, ea, batch, graph_off) + self.y_shift
        return out + torch.cat(offsets) if self.machine_dim else out

    def loss(self, out: Tensor, progs: Sequence[ProgramData]) -> Tensor:
        """Training loss of a batch of schedules (mean over schedules); ranking pairs are
        taken within each program only."""
        y = torch.cat([p.y for p in progs]).to(out.device)
        loss = regression_loss(out, y, self.loss_kind)
        if self.rank_weight > 0:
            group = None
            if len(progs) > 1:
                sizes = torch.tensor([p.num_schedules for p in progs], device=out.device)
                group = torch.repeat_interleave(torch.arange(len(progs), device=out.device), sizes)
            loss = loss + self.rank_weight * RANK_LOSSES[self.rank_loss](out, y, group)
        return loss

    def training_loss(self, progs: ProgramData | Sequence[ProgramData]) -> Tensor:
        """Loss of one training step over the schedules of one or more programs."""
        progs = [progs] if isinstance(progs, ProgramData) else list(progs)
        return self.loss(self.forward_programs(progs), progs)

    @staticmethod
    def to_seconds(out: Tensor) -> Tensor:
        return out.double().exp()

    def __repr__(self) -> str:
        machine = f", machine_dim={self.machine_dim}" if self.machine_dim else ""
        return (
            f"{self.__class__.__name__}({NUM_PIPELINE_FEATURES}+{NUM_SCHEDULE_FEATURES}, "
            f"{self.hidden_channels}, num_layers={self.num_layers}{machine})"
        )

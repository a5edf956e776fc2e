"""A stronger GNN: GINE convolutions with edge features, residual connections, and a
readout that sums per-stage run times.

Differences from the paper's GCN (:mod:`models.gcn`):

* :class:`~torch_geometric.nn.conv.GINEConv` uses the edge features (access kind,
  loads, strides, halo, direction), which GCN ignores;
* residual connections with layer norm, so depth does not wash out a stage's own
  features;
* the run time is a sum of per-stage costs (``log y = logsumexp_v head(h_v)``), the
  decomposition Adams2019 also assumes;
* the loss mixes the absolute error of log run time (about the relative error) with
  a pairwise ranking term among schedules of the same program.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import LayerNorm
from torch_geometric.nn import GINEConv, MLP

from models.base import GNN_EDGE_DIM, GraphCostModel, scatter_logsumexp


class GINE(GraphCostModel):
    r"""Residual :class:`~torch_geometric.nn.conv.GINEConv` cost model with a
    sum-of-stage-costs readout, after `"Strategies for Pre-training Graph Neural
    Networks" <https://arxiv.org/abs/1905.12265>`_.

    Args:
        hidden_channels (int, optional): Width of the node embeddings. (default: :obj:`64`)
        num_layers (int, optional): Number of GINE layers. (default: :obj:`3`)
        dropout (float, optional): Dropout after each layer. (default: :obj:`0.0`)
        loss (str, optional): ``"mse"`` or ``"l1"`` on log run time. (default: :obj:`"l1"`)
        rank_weight (float, optional): Weight of the pairwise ranking loss. (default: :obj:`0.5`)
        machine_dim (int, optional): Machine features read, for a model of several
            machines (:class:`models.base.GraphCostModel`). (default: :obj:`0`)
    """

    def __init__(
        self,
        hidden_channels: int = 64,
        num_layers: int = 3,
        dropout: float = 0.0,
        loss: str = "l1",
        rank_weight: float = 0.5,
        rank_loss: str = "pairwise",
        machine_dim: int = 0,
    ) -> None:
        super().__init__(hidden_channels, num_layers, dropout, loss, rank_weight, machine_dim, rank_loss)
        self.convs = torch.nn.ModuleList(
            GINEConv(
                MLP([hidden_channels, hidden_channels, hidden_channels], norm=None),
                train_eps=True,
                edge_dim=GNN_EDGE_DIM,
            )
            for _ in range(num_layers)
        )
        self.norms = torch.nn.ModuleList(LayerNorm(hidden_channels) for _ in range(num_layers))
        self.node_head = MLP([hidden_channels, hidden_channels, 1], norm=None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()
            norm.reset_parameters()
        self.node_head.reset_parameters()

    def propagate_and_read(
        self, h: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor, num_graphs: int
    ) -> Tensor:
        h = F.relu(h)
        for conv, norm in zip(self.convs, self.norms):
            h = h + F.dropout(F.relu(norm(conv(h, edge_index, edge_attr))), p=self.dropout, training=self.training)
        return scatter_logsumexp(self.node_head(h).squeeze(-1), batch, num_graphs)

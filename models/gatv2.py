"""A stronger GNN: GATv2 attention over the stage graph, with edge features,
residual connections, and a sum-of-stage-costs readout.

Like :mod:`models.gine` but with :class:`~torch_geometric.nn.conv.GATv2Conv`: each
stage weighs its producers and consumers by attention computed from both ends'
states and the edge features, so e.g. a stencil producer computed inline can matter
more than a pointwise one. Same loss: absolute log error plus pairwise ranking.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import LayerNorm
from torch_geometric.nn import GATv2Conv, MLP
from torch_geometric.utils import add_self_loops, remove_self_loops

from models.base import GNN_EDGE_DIM, GraphCostModel, scatter_logsumexp


class GATv2(GraphCostModel):
    r"""Residual :class:`~torch_geometric.nn.conv.GATv2Conv` cost model with edge
    features and a sum-of-stage-costs readout, after `"How Attentive are Graph
    Attention Networks?" <https://arxiv.org/abs/2105.14491>`_.

    Args:
        hidden_channels (int, optional): Width of the node embeddings; must be a
            multiple of ``heads``. (default: :obj:`64`)
        num_layers (int, optional): Number of attention layers. (default: :obj:`3`)
        heads (int, optional): Attention heads per layer (concatenated). (default: :obj:`4`)
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
        heads: int = 4,
        dropout: float = 0.0,
        loss: str = "l1",
        rank_weight: float = 0.5,
        rank_loss: str = "pairwise",
        machine_dim: int = 0,
    ) -> None:
        if hidden_channels % heads:
            raise ValueError(f"hidden_channels ({hidden_channels}) must be a multiple of heads ({heads})")
        super().__init__(hidden_channels, num_layers, dropout, loss, rank_weight, machine_dim, rank_loss)
        self.heads = heads
        self.convs = torch.nn.ModuleList(
            GATv2Conv(
                hidden_channels,
                hidden_channels // heads,
                heads=heads,
                edge_dim=GNN_EDGE_DIM,
                add_self_loops=False,  # added once per program in prepare_graph
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

    def prepare_graph(self, edge_index: Tensor, edge_attr: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
        # Self loops carry the mean of a node's incoming edge features (PyG's fill_value="mean").
        ei, ea = remove_self_loops(edge_index, edge_attr)
        return add_self_loops(ei, ea, fill_value="mean", num_nodes=num_nodes)

    def propagate_and_read(
        self, h: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor, num_graphs: int
    ) -> Tensor:
        h = F.relu(h)
        for conv, norm in zip(self.convs, self.norms):
            h = h + F.dropout(F.relu(norm(conv(h, edge_index, edge_attr))), p=self.dropout, training=self.training)
        return scatter_logsumexp(self.node_head(h).squeeze(-1), batch, num_graphs)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", heads={self.heads})"

"""The paper's GNN: graph convolutions over the stage graph, pooled, MLP head.

Singh, Hegarty, Leather, Steiner, "A graph neural network-based performance model
for deep learning applications", MAPS 2022 (arXiv:2108.12489). Our reading of its
architecture: each stage is a node with its pipeline and schedule features, a few
GCN layers (Kipf & Welling) mix neighbouring stages, a sum pooling gives the
program's embedding, and an MLP regresses the run time (here: log run time,
squared-error loss). Edges are used in both directions; GCN ignores edge features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GCNConv, MLP, global_add_pool
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from models.base import GraphCostModel


class GCN(GraphCostModel):
    r"""The paper's cost model: :class:`~torch_geometric.nn.conv.GCNConv` layers over the
    stage graph, :func:`~torch_geometric.nn.pool.global_add_pool`, and an MLP head
    regressing log run time, from
    `"A graph neural network-based performance model for deep learning applications"
    <https://arxiv.org/abs/2108.12489>`_.

    Args:
        hidden_channels (int, optional): Width of the node embeddings. (default: :obj:`64`)
        num_layers (int, optional): Number of GCN layers. (default: :obj:`3`)
        dropout (float, optional): Dropout after each layer. (default: :obj:`0.0`)
        loss (str, optional): ``"mse"`` or ``"l1"`` on log run time. (default: :obj:`"mse"`)
        rank_weight (float, optional): Weight of the pairwise ranking loss. (default: :obj:`0.0`)
        machine_dim (int, optional): Machine features read, for a model of several
            machines (:class:`models.base.GraphCostModel`). (default: :obj:`0`)
    """

    def __init__(
        self,
        hidden_channels: int = 64,
        num_layers: int = 3,
        dropout: float = 0.0,
        loss: str = "mse",
        rank_weight: float = 0.0,
        rank_loss: str = "pairwise",
        machine_dim: int = 0,
    ) -> None:
        super().__init__(hidden_channels, num_layers, dropout, loss, rank_weight, machine_dim, rank_loss)
        # Normalization (self loops, symmetric degree scaling) is done once per program in
        # prepare_graph, so the layers take precomputed edge weights.
        self.convs = torch.nn.ModuleList(
            GCNConv(hidden_channels, hidden_channels, normalize=False) for _ in range(num_layers)
        )
        self.head = MLP([hidden_channels, hidden_channels, 1], norm=None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        self.head.reset_parameters()

    def prepare_graph(self, edge_index: Tensor, edge_attr: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
        ei, weight = gcn_norm(edge_index, None, num_nodes, add_self_loops=True)
        return ei, weight.unsqueeze(-1)

    def propagate_and_read(
        self, h: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor, num_graphs: int
    ) -> Tensor:
        h = F.relu(h)
        weight = edge_attr.view(-1)
        for conv in self.convs:
            h = F.relu(conv(h, edge_index, weight))
            h = F.dropout(h, p=self.dropout, training=self.training)
        g = global_add_pool(h, batch, size=num_graphs)
        return self.head(g).squeeze(-1)

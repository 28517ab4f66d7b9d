"""GNN encoder of computation graphs and its graph-contrastive pre-training.

A computation graph (:mod:`raynas.graph`) has one node per primitive operator with
``x = [one-hot op type (29) | log1p numeric features (12)]``.  The encoder

.. math::
    h^{(0)}_v = W_{in}\\,[\\mathrm{onehot}_v,\\ (n_v - \\mu) / \\sigma], \\qquad
    h^{(l+1)}_v = h^{(l)}_v + \\mathrm{ReLU}\\big(\\mathrm{LN}(\\mathrm{Dir}(h^{(l)})_v)\\big),

    e = W_{out}\\,[\\mathrm{mean}_v h^{(L)}_v,\\ \\max_v h^{(L)}_v,\\ (g - \\mu_g) / \\sigma_g]

standardises the numeric features with statistics of the graphs it was pre-trained on
(``mu``, ``sigma`` are buffers, so they travel with the weights), runs ``L`` residual
message-passing layers, each a :class:`DirConv` (one convolution along
the data flow, one against it, plus a root weight: a node hears both its producers and its
consumers), and reads the graph out by mean and max pooling plus three standardised
graph scalars ``g = log1p(#nodes, params, flops)``.  ``conv`` picks the convolution:
``"gat"`` (GATv2Conv, 4 heads; the default), ``"gin"`` (GINConv with a two-layer MLP) or
``"graphconv"`` (GraphConv, sum aggregation).  GAT is the default because it transfers best
to a space without labels (``bench/predictor_transfer.py``; the README has the numbers):
attention lets a node weigh its producers, which differ in kind (a convolution's input vs a
skip), where GIN and GraphConv sum them.

Pre-training (:func:`pretrain_encoder`) is SimCLR on graphs: two augmented views of every graph
of a batch (:func:`augment`: Gaussian noise on the numeric features, whole-node feature
masking, edge dropping) are a positive pair, the other graphs of the batch the negatives,
and :func:`~raynas.losses.nt_xent` the loss on a projection head.
"""
from __future__ import annotations

import copy
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GATv2Conv, GINConv, GraphConv, global_max_pool, global_mean_pool

from raynas.losses import nt_xent
from raynas.graph_features import NUM_NODE_FEATURES, NUMERIC_FEATURES, OP_TYPES

CONVS = ("gin", "graphconv", "gat")
NUM_OPS = len(OP_TYPES)
NUM_NUMERIC = len(NUMERIC_FEATURES)
NUM_GRAPH_SCALARS = 3


def _conv(kind: str, hidden: int) -> nn.Module:
    if kind == "gin":
        return GINConv(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)), train_eps=True)
    if kind == "graphconv":
        return GraphConv(hidden, hidden, aggr="add")
    if kind == "gat":
        return GATv2Conv(hidden, hidden // 4, heads=4, add_self_loops=False)
    raise ValueError(f"conv must be one of {list(CONVS)}, got {kind!r}")


class DirConv(nn.Module):
    """``0.5 conv_fwd(h, E) + 0.5 conv_bwd(h, E^T) + W h``: one convolution along the data flow,
    one against it (two copies of ``conv`` with their own weights), and a root weight."""

    def __init__(self, conv: nn.Module, hidden: int):
        super().__init__()
        self.fwd = conv
        self.bwd = copy.deepcopy(conv)
        self.root = nn.Linear(hidden, hidden)
        self.bwd.reset_parameters()

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.fwd(h, edge_index) + 0.5 * self.bwd(h, edge_index.flip(0)) + self.root(h)


def graph_scalars(batch: Data) -> torch.Tensor:
    """``B x 3``: log1p of each graph's node count, parameter count and FLOPs."""
    index = getattr(batch, "batch", None)
    counts = torch.tensor([batch.num_nodes]) if index is None else torch.bincount(index, minlength=batch.num_graphs)
    return torch.log1p(torch.stack([counts.double(), batch.params.double(), batch.flops.double()], dim=1)).float()


class CGEncoder(nn.Module):
    """Directed residual GNN over computation graphs (see the module docstring).

    Args:
        conv: ``"gin"``, ``"graphconv"`` or ``"gat"``.
        hidden: width of the node states.
        layers: number of message-passing layers.
        embed_dim: size of the graph embedding.
        head_dim: size of the projection the contrastive loss sees.
        dropout: dropout on node states after every layer.
        clip: standardised numeric features (node features, graph scalars) are clipped to
            ``[-clip, clip]``, so a graph far outside the training graphs (a tiny user CNN
            next to full-size cells) is read as "very small" instead of driving the network
            into extrapolation (None: no clipping).
    """

    def __init__(
        self,
        conv: str = "gat",
        hidden: int = 64,
        layers: int = 4,
        embed_dim: int = 64,
        head_dim: int = 32,
        dropout: float = 0.0,
        clip: float | None = None,
    ):
        super().__init__()
        if conv not in CONVS:
            raise ValueError(f"conv must be one of {list(CONVS)}, got {conv!r}")
        for name, value in {"hidden": hidden, "layers": layers, "embed_dim": embed_dim, "head_dim": head_dim}.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if conv == "gat" and hidden % 4:
            raise ValueError(f"conv='gat' uses 4 heads, so hidden must be a multiple of 4; got {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if clip is not None and not clip > 0:
            raise ValueError(f"clip must be > 0 or None, got {clip!r}")
        self.hparams = {"conv": conv, "hidden": hidden, "layers": layers, "embed_dim": embed_dim,
                        "head_dim": head_dim, "dropout": dropout, "clip": clip}  # fmt: skip
        self.register_buffer("node_mean", torch.zeros(NUM_NUMERIC))
        self.register_buffer("node_std", torch.ones(NUM_NUMERIC))
        self.register_buffer("graph_mean", torch.zeros(NUM_GRAPH_SCALARS))
        self.register_buffer("graph_std", torch.ones(NUM_GRAPH_SCALARS))
        self.inp = nn.Linear(NUM_NODE_FEATURES, hidden)
        self.convs = nn.ModuleList(DirConv(_conv(conv, hidden), hidden) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.out = nn.Sequential(
            nn.Linear(2 * hidden + NUM_GRAPH_SCALARS, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.head = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.BatchNorm1d(embed_dim), nn.ReLU(), nn.Linear(embed_dim, head_dim)
        )

    @torch.no_grad()
    def fit_scaling(self, graphs: Iterable[Data]) -> "CGEncoder":
        """Set the feature standardisation from ``graphs`` (numeric node features and graph scalars)."""
        nodes, scalars = [], []
        for g in graphs:
            nodes.append(g.x[:, NUM_OPS:])
            scalars.append(graph_scalars(g))
        if not nodes:
            raise ValueError("fit_scaling needs at least one graph")
        x, s = torch.cat(nodes), torch.cat(scalars)
        self.node_mean.copy_(x.mean(0))
        self.node_std.copy_(x.std(0, unbiased=False).clamp_min(1e-3) if len(x) > 1 else torch.ones(NUM_NUMERIC))
        self.graph_mean.copy_(s.mean(0))
        self.graph_std.copy_(s.std(0, unbiased=False).clamp_min(1e-3) if len(s) > 1 else torch.ones(NUM_GRAPH_SCALARS))
        return self

    def forward(self, batch: Data) -> torch.Tensor:
        """Embeddings ``B x embed_dim`` of a :class:`~torch_geometric.data.Batch` (or one graph)."""
        x = batch.x
        if x.dim() != 2 or x.shape[1] != NUM_NODE_FEATURES:
            raise ValueError(f"expected node features N x {NUM_NODE_FEATURES} (raynas.graph), got {tuple(x.shape)}")
        index = batch.batch if getattr(batch, "batch", None) is not None else torch.zeros(len(x), dtype=torch.long)
        h = self.inp(torch.cat([x[:, :NUM_OPS], self._clip((x[:, NUM_OPS:] - self.node_mean) / self.node_std)], dim=1))
        for conv, norm in zip(self.convs, self.norms):
            h = h + F.dropout(F.relu(norm(conv(h, batch.edge_index))), self.hparams["dropout"], self.training)
        g = self._clip((graph_scalars(batch) - self.graph_mean) / self.graph_std)
        return self.out(torch.cat([global_mean_pool(h, index), global_max_pool(h, index), g], dim=1))

    def _clip(self, z: torch.Tensor) -> torch.Tensor:
        clip = self.hparams["clip"]
        return z if clip is None else z.clamp(-clip, clip)

    def project(self, embedding: torch.Tensor) -> torch.Tensor:
        """The projection head (used by the contrastive loss only)."""
        return self.head(F.relu(embedding))


def augment(
    batch: Data,
    generator: torch.Generator,
    noise: float = 0.1,
    mask: float = 0.1,
    drop_edges: float = 0.1,
) -> Data:
    """A random view of ``batch``: Gaussian noise (std ``noise``, in log1p units) on the numeric
    features, each node's whole feature row zeroed with probability ``mask``, each edge
    dropped with probability ``drop_edges``.  ``batch`` is not modified."""
    view = batch.clone()
    x = view.x.clone()
    x[:, NUM_OPS:] += noise * torch.randn(x[:, NUM_OPS:].shape, generator=generator)
    x[torch.rand(len(x), generator=generator) < mask] = 0.0
    view.x = x
    keep = torch.rand(view.edge_index.shape[1], generator=generator) >= drop_edges
    view.edge_index = view.edge_index[:, keep]
    return view


def pretrain_encoder(
    encoder: CGEncoder,
    graphs: Sequence[Data],
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    temperature: float = 0.2,
    seed: int = 0,
    pairs: Sequence[Data] | None = None,
    noise: float = 0.1,
    mask: float = 0.1,
    drop_edges: float = 0.1,
) -> list[float]:
    """NT-Xent pre-training of ``encoder`` on unlabelled ``graphs``; returns the mean loss per epoch.

    The positive of graph ``i`` is another augmented view of it, or, when ``pairs`` is given,
    an augmented view of ``pairs[i]`` (e.g. the same architecture built with other channel
    counts).  Adam with cosine decay of ``lr`` over all steps."""
    if len(graphs) < 2:
        raise ValueError(f"contrastive pre-training needs >= 2 graphs (the others are negatives), got {len(graphs)}")
    if pairs is not None and len(pairs) != len(graphs):
        raise ValueError(f"pairs must align with graphs: {len(pairs)} pairs for {len(graphs)} graphs")
    if batch_size < 2 or epochs < 1:
        raise ValueError(f"batch_size must be >= 2 and epochs >= 1, got {batch_size} and {epochs}")
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    steps = epochs * max(1, len(graphs) // batch_size)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    history: list[float] = []
    device = next(encoder.parameters()).device
    encoder.train()
    for _ in range(epochs):
        order = rng.permutation(len(graphs))
        losses = []
        for start in range(0, len(order) - 1, batch_size):
            chunk = order[start : start + batch_size]
            if len(chunk) < 2:
                continue
            first = Batch.from_data_list([graphs[i] for i in chunk])
            second = Batch.from_data_list([pairs[i] for i in chunk]) if pairs is not None else first
            views = [augment(b, generator, noise, mask, drop_edges).to(device) for b in (first, second)]
            z1, z2 = (encoder.project(encoder(v)) for v in views)
            loss = nt_xent(z1, z2, temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        history.append(float(np.mean(losses)))
    encoder.eval()
    return history

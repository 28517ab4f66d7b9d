"""The computation-graph (CG) predictor: one neural predictor for any CNN.

:class:`CGPredictor` reads the primitive-operator graph of a network (:mod:`raynas.graph`), never
a space's own encoding, so one model is trained on architectures of several spaces and predicts
for another space or a user's own ``nn.Module``.  Its parts:

1. **Graphs** (:mod:`predictors.cg_data`): Arch values are built (reduced: one cell per stage)
   and traced once, cached by canonical key, traced in Ray tasks when many, streamed in batches.
2. **Encoder** (:mod:`predictors.cg_encoder`): a directed residual GNN; optionally pre-trained
   contrastively (:meth:`CGPredictor.pretrain`) on unlabelled graphs of several spaces.
3. **Heads**: ``n_heads`` MLPs on the embedding, each trained on its own bootstrap re-weighting
   of the labelled set, fine-tuned together with the encoder.  ``predict`` returns their mean
   and standard deviation.

Labels are normalised per *group* (an Arch's space; ``"custom"`` for modules and graphs unless
``groups`` says otherwise) before training: ``label_norm="rank"`` maps each group's labels to
their centred ranks in ``(-1, 1)``, ``"zscore"`` standardises each group, ``"none"``
standardises all labels together.  Labels of different spaces are then comparable, which is
what lets one model learn from NB101 and NB301 tables and rank NB201 cells.  ``loss`` is
``"pairwise"`` (RankNet: logistic loss on the score differences of every pair of one group in a
batch), ``"listwise"`` (ListNet: cross entropy between the softmax of scores and of targets,
per group) or ``"mse"`` (on the normalised labels).

Predictions come back in label units: after training, the heads' scores are mapped linearly
onto the normalised labels of each group (least squares on the training set) and then through
that group's inverse normalisation.  An item of a group not seen in training (another space, a
user model) uses the mapping and labels of all training groups pooled.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn
from torch.nn import functional as F
from torch_geometric.data import Batch, Data

from predictors.cg_data import INPUT_SHAPE, GraphCache, GraphReader
from predictors.cg_encoder import CGEncoder, pretrain_encoder
from raynas.io import load_dir, save_dir
from raynas.progress import progress_bar
from raynas.arch import Arch
from search_spaces import available_spaces, get_space

LOSSES = ("pairwise", "listwise", "mse")
LABEL_NORMS = ("rank", "zscore", "none")
BATCHING = ("stratified", "mixed")
PRETRAIN_SPACES = ("nb101", "nb201", "darts", "mobilenetv3")
CUSTOM_GROUP = "custom"
POOLED = "__all__"
_QUANTILES = 1001


def ranking_loss(
    scores: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor, weights: torch.Tensor, kind: str
) -> torch.Tensor:
    """Loss of ``scores`` against normalised ``targets``; ``weights`` per item; pairs and lists
    only within one group."""
    if kind == "mse":
        return (weights * (scores - targets) ** 2).sum() / weights.sum().clamp_min(1e-8)
    if kind == "pairwise":
        better = (groups[:, None] == groups[None, :]) & (targets[:, None] > targets[None, :])
        pair_w = (weights[:, None] * weights[None, :])[better]
        diff = (scores[:, None] - scores[None, :])[better]
        return (pair_w * F.softplus(-diff)).sum() / pair_w.sum().clamp_min(1e-8)
    if kind == "listwise":
        total = scores.new_zeros(())
        for g in groups.unique():
            m = groups == g
            w = weights[m]
            target = torch.softmax(4.0 * targets[m] + torch.log(w.clamp_min(1e-8)), 0)
            total = total - (target * torch.log_softmax(scores[m] + torch.log(w.clamp_min(1e-8)), 0)).sum()
        return total / len(groups.unique())
    raise ValueError(f"loss must be one of {list(LOSSES)}, got {kind!r}")


class CGPredictor:
    """Predict a metric of any CNN from its computation graph (see the module docstring).

    Args:
        conv, hidden, layers, embed_dim, dropout, feature_clip: the :class:`~predictors.cg_encoder.CGEncoder`
            (``feature_clip`` is its ``clip``).
        loss: ``"pairwise"``, ``"listwise"`` or ``"mse"``.
        label_norm: ``"rank"``, ``"zscore"`` or ``"none"`` (per group, see the module docstring).
        batching: ``"stratified"``: every batch holds ``batch_size // #groups`` items of each group
            (a group of 100 target labels is seen as often as a table of 1,000);
            ``"mixed"``: batches drawn from all items alike.
        n_heads: ensemble size; the spread of the heads is the predicted std.
        epochs, batch_size, lr, weight_decay: fine-tuning (AdamW, cosine decay over all steps).
        pretrain_epochs, pretrain_batch_size, temperature: contrastive pre-training.
        seed: initialisation, batch order, bootstrap weights and augmentations.
        builds: build options per space for Arch inputs (default :data:`~predictors.cg_data.DEFAULT_BUILD`).
        input_shape: input shape networks are traced on, batch first.
        cache_dir: directory keeping traced graphs between sessions (Parquet shards); None: memory only.
        use_ray: trace in Ray tasks: ``"auto"`` (when 512 or more graphs are missing), True, False.
        predict_batch_size: graphs per forward pass in :meth:`predict` and :meth:`embed`.
        progress: show progress bars with an ETA on stderr while tracing and fitting.
        device: where the encoder and heads train and predict (graphs are traced on the CPU).
        extrapolate: with ``label_norm="rank"``, an item scored beyond every training item gets a
            label a little beyond the training labels' range (:func:`_quantile_curve`), keeping
            its order, instead of the range's end.  Items of a group without labels (a space the
            predictor transfers to) are mapped linearly (pooled mean and spread) whatever the
            normalisation: their ranking is all it can give, and a quantile map would put a whole
            space scored past the training range on one value.

    ``reader`` (a :class:`~predictors.cg_data.GraphReader`) holds the graph cache; predictors may
    share one.  Learned state: ``encoder_``, ``heads_``, ``pretrained_state_``, ``groups_``
    (label statistics and calibration per group) and the loss histories.
    """

    def __init__(
        self,
        conv: str = "gat",
        hidden: int = 64,
        layers: int = 4,
        embed_dim: int = 64,
        dropout: float = 0.0,
        feature_clip: float | None = None,
        loss: str = "pairwise",
        label_norm: str = "rank",
        batching: str = "stratified",
        n_heads: int = 5,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        pretrain_epochs: int = 20,
        pretrain_batch_size: int = 128,
        temperature: float = 0.2,
        seed: int = 0,
        builds: Mapping[str, Mapping[str, Any]] | None = None,
        input_shape: Sequence[int] = INPUT_SHAPE,
        cache_dir: str | Path | None = None,
        use_ray: bool | str = "auto",
        predict_batch_size: int = 256,
        progress: bool = False,
        device: str = "cpu",
        extrapolate: bool = False,
    ):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
        if label_norm not in LABEL_NORMS:
            raise ValueError(f"label_norm must be one of {list(LABEL_NORMS)}, got {label_norm!r}")
        if batching not in BATCHING:
            raise ValueError(f"batching must be one of {list(BATCHING)}, got {batching!r}")
        positive = {"n_heads": n_heads, "epochs": epochs, "batch_size": batch_size, "pretrain_epochs": pretrain_epochs,
                    "pretrain_batch_size": pretrain_batch_size, "predict_batch_size": predict_batch_size}  # fmt: skip
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (ranking losses compare items of a batch), got {batch_size}")
        for name, value in {"lr": lr, "temperature": temperature}.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        self.conv, self.hidden, self.layers, self.embed_dim, self.dropout = conv, hidden, layers, embed_dim, dropout
        self.feature_clip = feature_clip
        self.loss, self.label_norm, self.batching, self.n_heads = loss, label_norm, batching, n_heads
        self.epochs, self.batch_size, self.lr, self.weight_decay = epochs, batch_size, lr, weight_decay
        self.pretrain_epochs, self.pretrain_batch_size = pretrain_epochs, pretrain_batch_size
        self.temperature = temperature
        self.seed = seed
        self.builds = {k: dict(v) for k, v in (builds or {}).items()}
        self.input_shape = tuple(input_shape)
        self.cache_dir = str(cache_dir) if cache_dir is not None else None
        self.use_ray = use_ray
        self.predict_batch_size = predict_batch_size
        self.progress = progress
        self.device = torch.device(device)
        self.extrapolate = extrapolate
        self.reader = GraphReader(self.builds, self.input_shape, GraphCache(cache_dir), use_ray=use_ray, progress=progress)
        self._new_encoder()  # validates the encoder settings
        self.encoder_: CGEncoder | None = None
        self.heads_: nn.ModuleList | None = None
        self.pretrained_state_: dict[str, torch.Tensor] | None = None
        self.groups_: dict[str, dict[str, Any]] = {}
        self.pretrain_history_: list[float] = []
        self.pretrain_spaces_: list[str] = []
        self.fit_history_: list[float] = []

    # ------------------------------------------------------------------ public API
    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments (what :meth:`save` writes and :meth:`load` passes back)."""
        names = ("conv", "hidden", "layers", "embed_dim", "dropout", "feature_clip", "loss", "label_norm", "batching", "n_heads",
                 "epochs", "batch_size", "lr", "weight_decay", "pretrain_epochs", "pretrain_batch_size", "temperature",
                 "seed", "builds", "cache_dir", "use_ray", "predict_batch_size", "progress", "extrapolate")  # fmt: skip
        return {**{n: getattr(self, n) for n in names}, "input_shape": list(self.input_shape), "device": str(self.device)}

    def graphs(self, items: Sequence[Any]) -> list[Data]:
        """Graphs of ``items`` (Arch values, modules, ComputationGraphs or Data), traced or cached."""
        return self.reader.graphs(_as_list(items))

    def pretrain(
        self,
        items: Sequence[Any] | None = None,
        spaces: Sequence[str] = PRETRAIN_SPACES,
        n_per_space: int = 500,
        epochs: int | None = None,
        pair_builds: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> "CGPredictor":
        """Contrastive pre-training of a new encoder on unlabelled graphs.

        ``items`` (Arch values, modules or graphs), or else ``n_per_space`` distinct random
        architectures of each registered space among ``spaces`` (spaces that are not registered
        are skipped; :attr:`pretrain_spaces_` lists those used).  The positive of a graph is another
        augmented view of it, or with ``pair_builds`` (build options per space, e.g.
        ``{"nb201": {"C": 8, "N": 2}}``) an augmented view of the same Arch built that way (other
        items pair with themselves).  Later :meth:`fit` calls start from the pre-trained encoder.
        Sets :attr:`pretrain_history_` (NT-Xent per epoch)."""
        if items is None:
            rng = np.random.default_rng(self.seed)
            self.pretrain_spaces_ = [s for s in spaces if s in available_spaces()]
            if not self.pretrain_spaces_:
                raise ValueError(f"none of the spaces {list(spaces)} is registered; available: {available_spaces()}")
            items = [a for s in self.pretrain_spaces_ for a in get_space(s).sample_unique(n_per_space, rng)]
        else:
            items = _as_list(items)
            self.pretrain_spaces_ = sorted({a.space if isinstance(a, Arch) else CUSTOM_GROUP for a in items})
        graphs = self.reader.graphs(items)
        pairs = None
        if pair_builds is not None:
            builds = {**self.builds, **pair_builds}
            other = GraphReader(builds, self.input_shape, self.reader.cache, use_ray=self.use_ray)
            rebuilt = iter(other.graphs([a for a in items if isinstance(a, Arch)]))
            pairs = [next(rebuilt) if isinstance(a, Arch) else g for a, g in zip(items, graphs)]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            encoder = self._new_encoder().fit_scaling(graphs).to(self.device)
            self.pretrain_history_ = pretrain_encoder(
                encoder, graphs, epochs or self.pretrain_epochs, self.pretrain_batch_size,
                temperature=self.temperature, seed=self.seed, pairs=pairs,
            )
        self.pretrained_state_ = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
        self.encoder_ = encoder
        return self

    def fit(
        self,
        items: Sequence[Any],
        y: Sequence[float],
        groups: Sequence[str] | None = None,
        group_share: Mapping[str, float] | None = None,
    ) -> "CGPredictor":
        """Fine-tune the encoder (the pre-trained one if :meth:`pretrain` ran, else a new one) and
        the heads on labelled ``items``; ``groups`` overrides the group of each item (default: an
        Arch's space, ``"custom"`` otherwise).  ``group_share`` (stratified batching only) gives
        groups a larger or smaller share of every batch than the others' (default 1 each), e.g.
        ``{"nb201": 2.0}`` for the few labels of the space to be ranked."""
        items = _as_list(items)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(y) != len(items):
            raise ValueError(f"got {len(items)} items but {len(y)} labels")
        if len(items) < 2 or not np.all(np.isfinite(y)):
            raise ValueError("fit needs at least 2 items and finite labels")
        names = _groups(items, groups)
        share = dict(group_share or {})
        if share and (self.batching != "stratified" or set(share) - set(names) or min(share.values()) <= 0):
            raise ValueError(
                f"group_share needs batching='stratified' and positive shares of groups present in the data "
                f"{sorted(set(names))}; got {share} with batching={self.batching!r}"
            )
        graphs = self.reader.graphs(items)
        targets, self.groups_ = _normalise(y, names, self.label_norm)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            encoder = self._new_encoder()
            if self.pretrained_state_ is not None:
                encoder.load_state_dict(self.pretrained_state_)
            else:
                encoder.fit_scaling(graphs)
            heads = nn.ModuleList(_head(self.embed_dim) for _ in range(self.n_heads))
            encoder, heads = encoder.to(self.device), heads.to(self.device)
            self.fit_history_ = self._train(encoder, heads, graphs, targets, names, share)
        self.encoder_, self.heads_ = encoder.eval(), heads.eval()
        self._calibrate(graphs, targets, names)
        return self

    def predict(self, items: Sequence[Any], groups: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` over the heads, in label units (see the module docstring); items are
        traced (or read from the cache) and scored ``predict_batch_size`` at a time."""
        self._check_fitted()
        items = _as_list(items)
        names = _groups(items, groups)
        scores = self._scores(items)
        values = np.empty_like(scores)
        for name in set(names):
            rows = np.array([n == name for n in names])
            stats = self.groups_.get(name, self.groups_[POOLED])
            slope, intercept = np.asarray(stats["slope"])[:, None], np.asarray(stats["intercept"])[:, None]
            kind = self.label_norm if name in self.groups_ else "zscore"
            values[:, rows] = _denormalise(slope * scores[:, rows] + intercept, stats, kind, self.extrapolate)
        return values.mean(axis=0), values.std(axis=0)

    def embed(self, items: Sequence[Any]) -> np.ndarray:
        """Graph embeddings ``N x embed_dim`` of the (pre-trained or fitted) encoder."""
        if self.encoder_ is None:
            raise RuntimeError("CGPredictor has no encoder yet: call pretrain() or fit() first")
        with torch.no_grad():
            batches = self.reader.batches(_as_list(items), self.predict_batch_size)
            parts = [self.encoder_(b.to(self.device)).cpu().numpy() for b in batches]
        return np.concatenate(parts) if parts else np.zeros((0, self.embed_dim), dtype=np.float32)

    def save(self, path: str | Path) -> Path:
        """Write ``path/weights.pt`` and ``path/config.json`` (settings, label statistics, histories)."""
        weights = {
            "encoder": _cpu(self.encoder_.state_dict()) if self.encoder_ is not None else None,
            "heads": _cpu(self.heads_.state_dict()) if self.heads_ is not None else None,
            "pretrained": self.pretrained_state_,
        }
        config = {
            "params": self.get_params(),
            "groups": self.groups_,
            "pretrain_history": self.pretrain_history_,
            "pretrain_spaces": self.pretrain_spaces_,
            "fit_history": self.fit_history_,
        }
        return save_dir(path, weights, config)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "CGPredictor":
        """A predictor written by :meth:`save`, on ``device`` (default: the one it was saved with)."""
        config, weights = load_dir(path, "CGPredictor")
        model = cls(**{**config["params"], **({"device": device} if device else {})})
        model.pretrained_state_ = weights["pretrained"]
        if weights["encoder"] is not None:
            model.encoder_ = model._new_encoder()
            model.encoder_.load_state_dict(weights["encoder"])
            model.encoder_.to(model.device).eval()
        if weights["heads"] is not None:
            model.heads_ = nn.ModuleList(_head(model.embed_dim) for _ in range(model.n_heads))
            model.heads_.load_state_dict(weights["heads"])
            model.heads_.to(model.device).eval()
        model.groups_ = config["groups"]
        model.pretrain_history_ = config["pretrain_history"]
        model.pretrain_spaces_ = config["pretrain_spaces"]
        model.fit_history_ = config["fit_history"]
        return model

    # ------------------------------------------------------------------ internals
    def _new_encoder(self) -> CGEncoder:
        return CGEncoder(self.conv, self.hidden, self.layers, self.embed_dim, dropout=self.dropout, clip=self.feature_clip)

    def _check_fitted(self) -> None:
        if self.heads_ is None or self.encoder_ is None or not self.groups_:
            raise RuntimeError("CGPredictor is not fitted: call fit(items, y) first")

    def _train(
        self,
        encoder: CGEncoder,
        heads: nn.ModuleList,
        graphs: list[Data],
        targets: np.ndarray,
        names: list[str],
        share: Mapping[str, float],
    ) -> list[float]:
        rng = np.random.default_rng(self.seed)
        n = len(graphs)
        batch_size = min(self.batch_size, n)
        weights = torch.from_numpy(rng.poisson(1.0, size=(self.n_heads, n)).astype(np.float32))
        weights[0] = 1.0  # the first head sees every item once
        y = torch.from_numpy(targets.astype(np.float32))
        codes = {name: i for i, name in enumerate(sorted(set(names)))}
        group = torch.tensor([codes[name] for name in names])
        members = [np.flatnonzero(group.numpy() == c) for c in codes.values()]
        weights, y, group = weights.to(self.device), y.to(self.device), group.to(self.device)
        params = list(encoder.parameters()) + list(heads.parameters())
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        steps_per_epoch = max(1, n // batch_size)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs * steps_per_epoch)
        encoder.train()
        heads.train()
        history = []
        bar = progress_bar(self.epochs, "fitting the CG predictor", "epoch", self.progress)
        shares = np.array([share.get(name, 1.0) for name in codes])
        per_group = np.maximum(2, np.round(batch_size * shares / shares.sum())).astype(int)
        for _ in range(self.epochs):
            order = rng.permutation(n)
            losses = []
            for step in range(steps_per_epoch):
                if self.batching == "stratified":
                    picks = [rng.choice(m, size=min(k, len(m)), replace=False) for m, k in zip(members, per_group)]
                    idx = torch.from_numpy(np.concatenate(picks))
                else:
                    idx = torch.from_numpy(order[step * batch_size : (step + 1) * batch_size])
                emb = encoder(Batch.from_data_list([graphs[i] for i in idx.tolist()]).to(self.device))
                idx = idx.to(self.device)
                loss = sum(
                    ranking_loss(head(emb).squeeze(1), y[idx], group[idx], weights[h, idx], self.loss)
                    for h, head in enumerate(heads)
                ) / len(heads)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(loss.detach())
            history.append(float(torch.stack(losses).double().mean()))
            bar.update(1)
        bar.close()
        return history

    def _scores(self, items: list[Any]) -> np.ndarray:
        """``n_heads x N`` raw head scores."""
        parts = []
        with torch.no_grad():
            for batch in self.reader.batches(items, self.predict_batch_size):
                emb = self.encoder_(batch.to(self.device))  # type: ignore[misc]
                parts.append(torch.stack([h(emb).squeeze(1) for h in self.heads_]).cpu().numpy())  # type: ignore[union-attr]
        return np.concatenate(parts, axis=1) if parts else np.zeros((self.n_heads, 0), dtype=np.float32)

    def _calibrate(self, graphs: list[Data], targets: np.ndarray, names: list[str]) -> None:
        """Least-squares map from each head's score to the normalised label, per group and pooled."""
        scores = self._scores(graphs)
        for name, stats in self.groups_.items():
            rows = np.ones(len(names), bool) if name == POOLED else np.array([n == name for n in names])
            t = targets[rows]
            slopes = [float(np.cov(s, t, bias=True)[0, 1] / max(np.var(s), 1e-12)) for s in scores[:, rows]]
            stats["slope"] = slopes
            stats["intercept"] = [float(t.mean() - a * s.mean()) for a, s in zip(slopes, scores[:, rows])]


# ---------------------------------------------------------------------- helpers
def _as_list(items: Iterable[Any] | Any) -> list[Any]:
    if isinstance(items, (Arch, nn.Module, Data)) or not isinstance(items, Iterable) or isinstance(items, (str, bytes)):
        raise ValueError(
            f"expected a sequence of Arch values, nn.Modules, ComputationGraphs or Data graphs, got {type(items).__name__}"
        )
    return list(items)


def _groups(items: list[Any], groups: Sequence[str] | None) -> list[str]:
    if groups is not None:
        if len(groups) != len(items):
            raise ValueError(f"groups must have one entry per item: {len(groups)} for {len(items)} items")
        return [str(g) for g in groups]
    return [item.space if isinstance(item, Arch) else CUSTOM_GROUP for item in items]


def _cpu(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.cpu() for k, v in state.items()}


def _head(embed_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.Linear(embed_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))


def _normalise(y: np.ndarray, names: list[str], kind: str) -> tuple[np.ndarray, dict[str, dict[str, Any]]]:
    """Normalised targets and, per group (and pooled), what inverts the normalisation."""
    targets = np.empty_like(y)
    buckets = {POOLED: np.ones(len(y), bool)} if kind == "none" else {
        name: np.array([n == name for n in names]) for name in sorted(set(names))
    }
    for rows in buckets.values():
        v = y[rows]
        targets[rows] = (rankdata(v) - 0.5) / len(v) * 2 - 1 if kind == "rank" else (v - v.mean()) / max(v.std(), 1e-12)
    if kind != "none":
        buckets[POOLED] = np.ones(len(y), bool)
    stats = {}
    for name, rows in buckets.items():
        v = y[rows]
        quantiles = np.quantile(v, np.linspace(0, 1, min(_QUANTILES, len(v))))
        stats[name] = {"count": int(rows.sum()), "mean": float(v.mean()), "std": float(max(v.std(), 1e-12)),
                       "quantiles": quantiles.tolist()}  # fmt: skip
    return targets, stats


def _denormalise(t: np.ndarray, stats: Mapping[str, Any], kind: str, extrapolate: bool = False) -> np.ndarray:
    if kind == "rank":
        q = np.asarray(stats["quantiles"])
        u = (t + 1) / 2
        return _quantile_curve(u, q) if extrapolate else np.interp(u, np.linspace(0, 1, len(q)), q)
    return stats["mean"] + stats["std"] * t


def _quantile_curve(u: np.ndarray, q: np.ndarray, reach: float = 0.1, softness: float = 0.5) -> np.ndarray:
    """The label at quantile ``u`` of the training labels ``q`` (evenly spaced quantiles).  Past
    the ends (``u`` < 0 or > 1: scored beyond every training item) the curve goes on, bending
    to stay within ``reach`` of the labels' range beyond it (``tanh`` over ``softness`` quantile
    units), so such items keep their order instead of all landing on the minimum or maximum,
    and never run off."""
    values = np.interp(u, np.linspace(0, 1, len(q)), q)
    if len(q) < 2 or q[-1] <= q[0]:
        return values
    width = reach * (q[-1] - q[0])
    below = q[0] - width * np.tanh(np.maximum(-u, 0) / softness)
    above = q[-1] + width * np.tanh(np.maximum(u - 1, 0) / softness)
    return np.where(u < 0, below, np.where(u > 1, above, values))

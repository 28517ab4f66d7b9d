"""Where does training move an architecture in Jacobian-embedding space?  A 2-D PCA map.

A few NB201 networks are trained on digits (plain SGD loop); after every epoch (epoch 0 is the
random initialisation) the data Jacobian of their *current weights* is projected like any
initialisation's (:func:`predictors.embed_pipeline.module_features`) and embedded by a trained
encoder.  The map shows the encoder's pool of random-init embeddings (grey) and each trained
network's path through it; a table of validation accuracy and distance travelled is printed.

    python bench/embed_training_map.py --pool 200 --epochs 5 --out /tmp/raynas-embed-training-map.png

Without ``--encoder`` one is trained first on ``--pool`` random NB201 archs (features and
encoder kept in ``--workdir``, reused by a rerun with the same settings).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import nn

from predictors.embed_pipeline import FeatureSettings, build_embeddings, load_encoder, module_features
from predictors.embeddings import ArchEmbeddings
from predictors.jacobian import input_basis
from predictors.set_encoder import SetEncoder, embed
from raynas.data import load_dataset
from raynas.trainables.standalone import accuracy
from search_spaces import get_space

#: the best NB201 cell on CIFAR-10 (index 6111), an all-pooling one and a plain 1x1 chain
DEFAULT_ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    "|nor_conv_1x1~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|nor_conv_1x1~2|",
]


def trajectory(
    model: nn.Module, encoder: SetEncoder, settings: FeatureSettings, epochs: int, lr: float, seed: int
) -> tuple[np.ndarray, list[float]]:
    """Embeddings ``(epochs + 1) x E`` of ``model`` before training and after each epoch, and val accuracies."""
    data = load_dataset(settings.dataset)
    inputs = settings.inputs()
    basis = input_basis(inputs, settings.proj_dim)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs))
    generator = torch.Generator().manual_seed(seed)
    points, accs = [embed(encoder, module_features(model, inputs, basis))], [accuracy(model, data, "valid")]
    for _ in range(epochs):
        model.train()
        for x, y in data.batches("train", 64, shuffle=True, augment=True, generator=generator):
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        schedule.step()
        points.append(embed(encoder, module_features(model, inputs, basis)))
        accs.append(accuracy(model, data, "valid"))
    return np.stack(points), accs


def view(background: np.ndarray, tracks: np.ndarray, keep: float = 98.0) -> tuple[np.ndarray, np.ndarray]:
    """Axis limits holding every trajectory point and the central ``keep`` % of the pool (outliers,
    e.g. cells whose output ignores the input, would otherwise squeeze the map)."""
    tail = (100.0 - keep) / 2
    points = np.concatenate([tracks, np.percentile(background, [tail, 100.0 - tail], axis=0)])
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.08 * (high - low)
    return low - pad, high + pad


def draw_map(pool: ArchEmbeddings, paths: dict[str, tuple[np.ndarray, list[float]]], title: str, out: Path) -> Path:
    """PCA of the pool and the trajectories (square: epoch 0; numbers: epochs; legend: val acc)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pca = PCA(2).fit(np.concatenate([pool.vectors, *(p for p, _ in paths.values())]))
    figure, axes = plt.subplots(figsize=(9, 7))
    background = pca.transform(pool.vectors)
    tracks = {label: (pca.transform(points), accs) for label, (points, accs) in paths.items()}
    low, high = view(background, np.concatenate([xy for xy, _ in tracks.values()]))
    hidden = int((~((background >= low) & (background <= high)).all(axis=1)).sum())
    note = f", {hidden} outside the view" if hidden else ""
    axes.scatter(background[:, 0], background[:, 1], s=8, c="0.75", label=f"{len(pool)} random-init NB201 archs{note}")
    for (label, (xy, accs)), colour in zip(tracks.items(), plt.cm.tab10.colors):
        name = f"{label[:50]}... ({accs[0]:.0f}% -> {accs[-1]:.0f}%)"
        axes.plot(xy[:, 0], xy[:, 1], "-o", color=colour, label=name)
        axes.plot(*xy[0], "s", color=colour, markersize=10)
        for epoch, (x, y) in enumerate(xy):
            axes.annotate(str(epoch), (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points", color=colour)
    axes.set_xlim(low[0], high[0])
    axes.set_ylim(low[1], high[1])
    axes.set_xlabel(f"PC 1 ({pca.explained_variance_ratio_[0]:.0%})")
    axes.set_ylabel(f"PC 2 ({pca.explained_variance_ratio_[1]:.0%})")
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", help="a saved encoder (default: train one on --pool archs)")
    parser.add_argument("--pool", type=int, default=200, help="random NB201 archs (encoder training, background)")
    parser.add_argument("--archs", default=",".join(DEFAULT_ARCHS), help="NB201 arch strings to train, comma-separated")
    parser.add_argument("--build", default='{"C": 8, "N": 1}', help="nb201 build options (JSON)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--encoder-epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64, help="B images per Jacobian")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="/tmp/raynas-embed-training-map")
    parser.add_argument("--out", default="/tmp/raynas-embed-training-map.png")
    args = parser.parse_args()
    torch.set_num_threads(1)

    space, build = get_space("nb201"), json.loads(args.build)
    table = Path(args.workdir) / "pool.parquet"
    settings = FeatureSettings("digits", num_inits=4, batch_size=args.batch_size, proj_dim=64, seed=args.seed)
    if args.encoder:
        settings = FeatureSettings.from_meta(load_encoder(args.encoder).feature_meta_)
    train = {"epochs": args.encoder_epochs, "batch_size": 64, "lr": 1e-3, "seed": args.seed}
    summary = build_embeddings(
        space, table, settings, archs=args.pool, encoder=args.encoder or Path(args.workdir) / "encoder",
        train=not args.encoder, train_options=train, builds={"nb201": build}, progress=False,
    )
    encoder, pool = load_encoder(summary.encoder_path), ArchEmbeddings.from_parquet(table)

    paths, rows = {}, []
    for i, text in enumerate(a for a in args.archs.split(",") if a):
        arch = space.canonical(space.parse(text))
        torch.manual_seed(args.seed + i)
        model = space.build(arch, num_classes=10, in_shape=(1, 8, 8), **build)
        points, accs = trajectory(model, encoder, settings, args.epochs, args.lr, args.seed + i)
        paths[f"arch {i}: {text}"] = (points, accs)
        for epoch, (point, acc) in enumerate(zip(points, accs)):
            rows.append((i, epoch, acc, float(np.linalg.norm(point - points[0]))))

    title = f"Jacobian embeddings of NB201 {build} networks while training on digits (numbers: epochs)"
    out = draw_map(pool, paths, title, Path(args.out))

    print("| arch | epoch | val acc (%) | distance from epoch 0 |\n| --- | --- | --- | --- |")
    for i, epoch, acc, distance in rows:
        print(f"| {i} | {epoch} | {acc:.1f} | {distance:.3f} |")
    spread = np.linalg.norm(pool.vectors - pool.vectors.mean(0), axis=1).mean()
    print(f"\nmean distance of a pool embedding from the pool mean: {spread:.3f}")
    print(f"map saved to {out}")


if __name__ == "__main__":
    main()

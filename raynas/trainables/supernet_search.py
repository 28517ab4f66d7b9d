"""Scoring architectures by inherited supernet weights as Ray tasks, search on a trained
supernet (random search, regularized evolution), and the ranking metrics that judge it.

The supernet state and the dataset go into the object store once (``ray.put``); each task
rebuilds the supernet from the shared state and scores a chunk of architectures, so a
candidate pool of thousands spreads over every CPU of the cluster.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import ray

from raynas.arch import Arch
from raynas.data import ImageDataset
from raynas.devices import trial_device
from raynas.parallel import use_allotted_threads
from raynas.trainables.subnet_search import Scored, top_scored, evolve
from raynas.trainables.supernet import evaluate_path, load_supernet, path_score
from search_spaces import SearchSpace, as_space


def score_texts(
    state: Mapping[str, Any], texts: Sequence[str], data: ImageDataset, split: str | None = None
) -> list[float]:
    """Inherited-weight scores of the architectures ``texts`` (the settings' ``rank_by``; with
    ``split``, accuracy on that split), in this process (on its GPU when Ray gave it one)."""
    data = data.to(trial_device(state["settings"].get("device", "auto")))
    net, settings = load_supernet(state, data)
    space = as_space(settings.space)
    if split is None:
        return [path_score(net, space.parse(text).spec, data, settings) for text in texts]
    return [evaluate_path(net, space.parse(text).spec, data, settings, split) for text in texts]


@ray.remote(num_cpus=1)
def _score_chunk(state: Mapping[str, Any], texts: Sequence[str], data: ImageDataset, split: str | None) -> list[float]:
    use_allotted_threads()
    return score_texts(state, texts, data, split)


def _texts(space: SearchSpace | None, archs: Sequence[Arch | str]) -> list[str]:
    if space is None:
        return [str(a) for a in archs]
    return [str(space.as_arch(a)) for a in archs]


def score_archs(
    supernet_state: Mapping[str, Any] | ray.ObjectRef,
    archs: Sequence[Arch | str],
    data: ImageDataset | ray.ObjectRef,
    split: str | None = None,
    chunk_size: int | None = None,
    num_gpus: float = 0.0,
) -> list[float]:
    """The inherited-weight score of each architecture (the supernet settings' ``rank_by``,
    by default valid accuracy in percent; with ``split``, accuracy on that split), one value
    per architecture in order, computed by Ray tasks (each on ``num_gpus`` GPUs).

    ``supernet_state`` is :meth:`SupernetTrainable.supernet_state` or
    :func:`load_supernet_state`'s result; it and ``data`` are put in the object store once
    (pass ``ObjectRef``s to share them across calls).  ``chunk_size`` architectures go to
    each task (default: two tasks per cluster CPU).
    """
    space = None if isinstance(supernet_state, ray.ObjectRef) else as_space(supernet_state["settings"]["space"])
    texts = _texts(space, archs)
    if not texts:
        return []
    if chunk_size is None:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1))) if ray.is_initialized() else 1
        chunk_size = math.ceil(len(texts) / (2 * cpus))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    state_ref = supernet_state if isinstance(supernet_state, ray.ObjectRef) else ray.put(supernet_state)
    data_ref = data if isinstance(data, ray.ObjectRef) else ray.put(data)
    futures = [
        _score_chunk.options(num_gpus=num_gpus).remote(state_ref, texts[i : i + chunk_size], data_ref, split)
        for i in range(0, len(texts), chunk_size)
    ]
    return [score for chunk in ray.get(futures) for score in chunk]


def random_search(
    supernet_state: Mapping[str, Any],
    data: ImageDataset,
    num_samples: int = 100,
    top_k: int = 5,
    seed: int = 0,
    split: str | None = None,
) -> list[Scored]:
    """Score ``num_samples`` distinct random architectures (the settings' ``rank_by``) in one
    bulk Ray map; the ``top_k`` best as ``(arch, accuracy)``, best first."""
    space = as_space(supernet_state["settings"]["space"])
    archs = space.sample_unique(num_samples, seed)
    return top_scored(dict(zip(archs, score_archs(supernet_state, archs, data, split))), top_k)


def evolution_search(
    supernet_state: Mapping[str, Any],
    data: ImageDataset,
    num_samples: int = 100,
    population_size: int = 20,
    sample_size: int = 5,
    batch_size: int = 10,
    top_k: int = 5,
    seed: int = 0,
    split: str | None = None,
) -> list[Scored]:
    """Regularized evolution (:class:`~searchers.evolution.RegularizedEvolution`, the searcher
    Tune runs) scored by the settings' ``rank_by``, ``batch_size`` children per Ray map.

    Stops after ``num_samples`` distinct architectures; returns the ``top_k`` best seen, best first.
    """
    space = as_space(supernet_state["settings"]["space"])
    refs: list[ray.ObjectRef] = []  # put once, on the first batch (bad arguments fail before)

    def score(texts: list[str]) -> list[float]:
        if not refs:
            refs.extend((ray.put(supernet_state), ray.put(data)))
        return score_archs(refs[0], texts, refs[1], split)

    return top_scored(evolve(space, score, num_samples, population_size, sample_size, batch_size, seed), top_k)


def kendall_tau(predicted: Sequence[float], truth: Sequence[float]) -> float:
    """Kendall's tau-b between two score lists."""
    from scipy.stats import kendalltau  # slow to import; `raynas --help` and mistakes stay fast

    return float(kendalltau(predicted, truth).statistic)


def sparse_kendall_tau(predicted: Sequence[float], truth: Sequence[float], decimals: int = 2) -> float:
    """Kendall's tau after rounding accuracies (percent) to ``decimals`` places, so scores
    within 0.01 percentage points tie (Yu et al., 2020)."""
    return kendall_tau(np.round(predicted, decimals), np.round(truth, decimals))


def truth_binned_kendall_tau(predicted: Sequence[float], truth: Sequence[float], bin_size: float = 1e-4) -> float:
    """Sparse Kendall tau as the study's official code computes it: only the ground truth
    (accuracy in percent, binned as a fraction at ``bin_size``) is binned, so near-equal true
    accuracies tie; the supernet's scores are left as they are (the benchmark-table protocol)."""
    bins = np.floor(np.round(np.asarray(truth, dtype=float) / 100.0 / bin_size, 6))  # 0.9 / 1e-4 is not 8999.99
    return kendall_tau(predicted, bins)


def top_k_overlap(predicted: Sequence[float], truth: Sequence[float], k: int) -> float:
    """Share of the true top ``k`` that the predicted top ``k`` holds."""
    if not 1 <= k <= len(truth):
        raise ValueError(f"k must be in [1, {len(truth)}], got {k}")

    def best(values: Sequence[float]) -> set[int]:
        return set(np.argsort(-np.asarray(values, dtype=float), kind="stable")[:k].tolist())

    return len(best(predicted) & best(truth)) / k

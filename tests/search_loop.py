"""A plain suggest / complete loop over NB201 with a cheap deterministic objective, shared
by the searcher tests."""
from __future__ import annotations

from searchers import FINISHED
from search_spaces import get_space

SPACE = get_space("nb201")


def objective(arch) -> float:
    """A stand-in for accuracy: favours 3x3 convolutions on live edges, then 1x1, then skips."""
    spec = SPACE.canonical(arch).spec
    return 2.0 * spec.count("nor_conv_3x3") + spec.count("nor_conv_1x1") + 0.3 * spec.count("skip_connect")


def run(searcher, steps: int, start: int = 0, until: float | None = None) -> list:
    """Drive ``searcher`` for ``steps`` trials (fewer if it finishes, or once an architecture
    scores ``until``); the archs it proposed."""
    archs = []
    for i in range(start, start + steps):
        config = searcher.suggest(f"t{i}")
        if config == FINISHED:
            break
        arch = SPACE.decode(config)
        archs.append(arch)
        searcher.on_trial_complete(f"t{i}", {"val_acc": objective(arch), "params": 1})
        if until is not None and objective(arch) >= until:
            break
    return archs

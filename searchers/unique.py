"""Run any Tune ``Searcher`` over a raynas space without repeating equivalent architectures.

Tune's own searchers (HyperOpt TPE, Nevergrad, Optuna, ...) see the flat config only, so
they happily propose a cell equivalent to one already trained.  This adapter sits between
them and Tune and asks again; configs the space rejects (an NB101 cell with too many edges)
are marked failed.  After ``max_repeats`` repeats it takes an unseen neighbour of the last
repeated proposal (a random unseen architecture when it has none); while the optimiser keeps
repeating, it is asked once per ``suggest``.

How a repeat is answered depends on the optimiser.  One that can learn points it did not
propose (``add_evaluated_point``) is told the repeat failed, and is taught the architecture
used instead, so its model holds each architecture once.  Telling such a model the recorded
value again would count the best architectures once per repeat: TPE's density of good points
then sharpens on them, it repeats more, and its history (and its cost per ``suggest``) grows
many times faster than the trials.  One that cannot is told the recorded value, so it moves on.
"""
from __future__ import annotations

from typing import Any, Callable

from ray.tune.search import Searcher

from raynas.arch import Arch
from search_spaces import SearchSpace
from searchers.base import FINISHED, ArchSearcher, restore_searcher, searcher_bytes

#: ``make_inner(metric, mode) -> Searcher``: builds the wrapped searcher once both are known
InnerFactory = Callable[[str, str], Searcher]


class UniqueArchSearcher(ArchSearcher):
    """Wrap the Tune ``Searcher`` that ``make_inner(metric, mode)`` builds over this space's domains.

    The inner searcher is built when metric and mode are known: here if given, else when Tune
    sets them (``set_search_properties``); Tune's searchers read them only when built.
    ``make_inner`` must pickle (a ``functools.partial`` of a module-level function) for the
    wrapper to pickle: the inner searcher itself is pickled through its own ``save``.
    """

    def __init__(
        self,
        make_inner: InnerFactory,
        space: SearchSpace | str,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        max_repeats: int = 5,
        max_resample: int = 1000,
    ):
        super().__init__(space, metric, mode, seed, max_resample)
        self.make_inner = make_inner
        self.inner: Searcher | None = make_inner(metric, mode) if metric and mode else None
        self.max_repeats = max_repeats
        self.inner_ids: dict[str, str | None] = {}  # our trial id -> inner trial id (None: not the inner's)
        # asked again only up to ``max_repeats`` times after a suggest the inner optimiser won;
        # once it only repeats (converged), once per suggest: each ask costs what its model does
        self._inner_chose_last = True

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        super().set_search_properties(metric, mode, config, **spec)
        if self.inner is None and self._metric and self._mode:
            self.inner = self.make_inner(self._metric, self._mode)
        return True

    def suggest(self, trial_id: str) -> dict | str | None:
        self._check_objective()
        repeated = None  # the optimiser's last proposal that was seen before
        for attempt in range(self.max_repeats if self._inner_chose_last else 1):
            inner_id = f"{trial_id}~{attempt}"
            config = self.inner.suggest(inner_id)
            if config is None:  # the optimizer waits for a result (a sequential one)
                break
            if config == FINISHED:
                return config
            try:
                arch = self.space.decode(config)
            except ValueError:  # e.g. an NB101 cell with too many edges: teach it that this fails
                self.inner.on_trial_complete(inner_id, error=True)
                continue
            if self.is_unseen(arch):
                self._inner_chose_last = True
                return self._accept(trial_id, arch, inner_id)
            repeated, known = arch, self.values.get(arch.key)
            if known is None or self._learns_outside_points():
                self.inner.on_trial_complete(inner_id, error=True)
            else:
                self.inner.on_trial_complete(inner_id, {self._metric: known})
        self._inner_chose_last = False
        arch = self._unseen_near(repeated)
        return arch if arch == FINISHED else self._accept(trial_id, arch, None)

    def _learns_outside_points(self) -> bool:
        return type(self.inner).add_evaluated_point is not Searcher.add_evaluated_point

    def _unseen_near(self, arch: Arch | None) -> Arch | str:
        """An unseen neighbour of ``arch`` (the optimiser's repeated choice: the region it
        wants), else a random unseen architecture, else ``FINISHED``."""
        if arch is not None:
            near = [a for a in self.space.neighbors(arch) if self.is_unseen(a)]
            if near:
                return near[int(self.rng.integers(len(near)))]
        return self.random_unseen()

    def _accept(self, trial_id: str, arch: Arch, inner_id: str | None) -> dict:
        self._mark_seen(arch)
        self.pending[trial_id] = arch
        self.inner_ids[trial_id] = inner_id
        return self.space.encode(arch)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        inner_id = self.inner_ids.get(trial_id)
        if inner_id is not None:
            self.inner.on_trial_result(inner_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        arch = self.pending.get(trial_id)
        inner_id = self.inner_ids.pop(trial_id, None)
        super().on_trial_complete(trial_id, result, error)
        value = self._value(result)
        if inner_id is not None:
            ok = not error and value is not None
            self.inner.on_trial_complete(inner_id, {self._metric: value} if ok else None, error=not ok)
        elif arch is not None and value is not None and not error:
            try:  # a fallback architecture: teach the optimiser if it can take outside points
                self.inner.add_evaluated_point(self.space.encode(arch), value)
            except NotImplementedError:
                pass

    def get_state(self) -> dict:
        inner = None if self.inner is None else searcher_bytes(self.inner)
        if self.inner is not None and inner is None:
            raise ValueError(f"{type(self.inner).__name__} cannot save its state, so {type(self).__name__} cannot either")
        return {**super().get_state(), "inner": inner, "inner_ids": dict(self.inner_ids)}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.inner_ids = dict(state["inner_ids"])
        self._restore_inner(state["inner"])

    def _restore_inner(self, saved: bytes | None) -> None:
        self.inner = None if saved is None else self.make_inner(self._metric, self._mode)
        if saved is not None:
            restore_searcher(self.inner, saved)

    # pickle and deepcopy the inner searcher through its own save: HyperOptSearch holds a lambda
    def __getstate__(self) -> dict:
        return {**self.__dict__, "inner": None if self.inner is None else searcher_bytes(self.inner)}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({k: v for k, v in state.items() if k != "inner"})
        self._restore_inner(state["inner"])


def nevergrad_flat(domains: dict, seed: int | None, optimizer: str, budget: int, metric: str, mode: str) -> Searcher:
    """Tune's NevergradSearch over ``domains`` (seeded), never blocking in ``suggest``."""
    import nevergrad as ng
    import numpy as np
    from ray.tune.search.nevergrad import NevergradSearch

    from searchers.box_searchers import NonBlockingNevergradSearch

    parametrization = NevergradSearch.convert_search_space(domains)
    parametrization.random_state = np.random.RandomState(seed)
    return NonBlockingNevergradSearch(ng.optimizers.registry[optimizer], budget, parametrization, metric, mode)

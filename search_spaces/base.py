"""The contract every search space implements (see DESIGN.md, "The one data flow").

A space turns a flat Tune config into an :class:`~raynas.arch.Arch` (``decode``) and back
(``encode``), and an Arch into a real ``torch.nn.Module`` (``build``).  Subclasses
implement a handful of spec-level hooks (``_parse_spec``, ``_format``, ``_validate``,
``_key``); the public methods are written once here so every space validates, tags and
canonicalises in the same way.
"""
from __future__ import annotations

import abc
import numbers
from typing import TYPE_CHECKING, Any, Hashable, Iterable, Iterator, Mapping, Sequence

import networkx as nx
import numpy as np

from raynas.arch import Arch

if TYPE_CHECKING:
    from torch import nn

RngLike = np.random.Generator | int | None


def as_rng(rng: RngLike) -> np.random.Generator:
    """Accept a Generator, a seed or None, so callers never juggle RNG types."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def check_choice(field: str, value: Any, allowed: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; otherwise name the field and the options."""
    if value not in allowed:
        raise ValueError(f"{field}: {value!r} is not allowed; allowed values are {list(allowed)}")
    return value


class SearchSpace(abc.ABC):
    """A NAS search space exposed as Ray Tune sampling domains."""

    #: registry name, also the ``Arch.space`` tag
    name: str = ""

    # ----------------------------------------------------------------- spec hooks
    @abc.abstractmethod
    def _parse_spec(self, text: str) -> Hashable:
        """Parse the space's string form into a spec; ValueError on malformed text."""

    @abc.abstractmethod
    def _format(self, spec: Hashable) -> str:
        """The space's string form of a spec (inverse of ``_parse_spec``)."""

    @abc.abstractmethod
    def _validate(self, spec: Hashable) -> None:
        """Raise ValueError naming the offending field if ``spec`` is not in the space."""

    @abc.abstractmethod
    def _key(self, spec: Hashable) -> str:
        """Canonical key: equal for specs that compute the same function."""

    @abc.abstractmethod
    def _spec_from_config(self, config: Mapping[str, Any]) -> Hashable:
        """Read this space's keys from a flat config (values already checked by ``decode``)."""

    @abc.abstractmethod
    def _config_from_spec(self, spec: Hashable) -> dict[str, Any]:
        """Flat config holding this space's keys for ``spec``."""

    # ----------------------------------------------------------------- Tune side
    @abc.abstractmethod
    def tune_space(self) -> dict[str, Any]:
        """Plain Ray Tune domains, one per flat config key."""

    def config_keys(self) -> list[str]:
        """The keys this space owns in a flat config (trainer keys live beside them)."""
        return list(self.tune_space())

    def decode(self, config: Mapping[str, Any]) -> Arch:
        """Arch from a flat Tune config; keys other than this space's are ignored."""
        missing = [k for k in self.config_keys() if k not in config]
        if missing:
            raise ValueError(
                f"{self.name} config is missing keys {missing}; expected keys {self.config_keys()}"
            )
        return self.make(self._spec_from_config(config))

    def encode(self, arch: Arch) -> dict[str, Any]:
        """Flat config (this space's keys only) that decodes to ``arch``."""
        return self._config_from_spec(self._own(arch).spec)

    # ----------------------------------------------------------------- values
    def make(self, spec: Hashable) -> Arch:
        """Validate ``spec`` and wrap it as an Arch of this space."""
        self._validate(spec)
        return Arch(space=self.name, text=self._format(spec), key=self._key(spec), spec=spec)

    def parse(self, text: str) -> Arch:
        """Arch from the space's string form (``str(arch)`` round-trips)."""
        if not isinstance(text, str):
            raise ValueError(f"{self.name} arch string must be a str, got {type(text).__name__}")
        return self.make(self._parse_spec(text))

    def as_arch(self, item: Arch | str) -> Arch:
        """``item`` if it is an Arch of this space, or the Arch its string form names."""
        return self.parse(item) if isinstance(item, str) else self._own(item)

    def as_unique_archs(self, items: Sequence[Arch | str]) -> list[Arch]:
        """``items`` as architectures of this space, equivalent ones once (the first spelling
        kept); one that is not an architecture of the space is named in a ``ValueError``."""
        unique: dict[str, Arch] = {}
        for item in items:
            try:
                arch = self.as_arch(item)
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{item!r} is not a {self.name} architecture: {err}") from None
            unique.setdefault(arch.key, arch)
        return list(unique.values())

    def arch_from_record(self, record: Mapping[str, Any]) -> Arch:
        """Arch from one row of a benchmark table.  The default reads an ``arch_str`` (or
        ``arch``) column; spaces whose tables store structured columns override it."""
        for column in ("arch_str", "arch"):
            if column in record:
                return self.parse(record[column])
        raise KeyError(f"{self.name} table rows need an 'arch_str' or 'arch' column, got {sorted(record)}")

    def record_columns(self) -> list[str]:
        """Table columns ``arch_from_record`` reads (the first one present is used by default)."""
        return ["arch_str", "arch"]

    def is_valid(self, arch: Arch | Hashable) -> bool:
        spec = arch.spec if isinstance(arch, Arch) else arch
        if isinstance(arch, Arch) and arch.space != self.name:
            return False
        try:
            self._validate(spec)
        except (ValueError, TypeError):
            return False
        return True

    def canonical(self, arch: Arch) -> Arch:
        """The representative of ``arch``'s equivalence class (same key, canonical text)."""
        return self.make(self._canonical_spec(self._own(arch).spec))

    def _canonical_spec(self, spec: Hashable) -> Hashable:
        """Representative spec of ``spec``'s class; spaces with redundancy override this."""
        return spec

    def _own(self, arch: Arch) -> Arch:
        if not isinstance(arch, Arch):
            raise ValueError(f"expected an Arch of space {self.name!r}, got {type(arch).__name__}")
        if arch.space != self.name:
            raise ValueError(f"arch belongs to space {arch.space!r}, not {self.name!r}")
        return arch

    # ----------------------------------------------------------------- search moves
    @abc.abstractmethod
    def sample(self, rng: RngLike = None) -> Arch:
        """A uniformly random valid architecture."""

    @abc.abstractmethod
    def neighbors(self, arch: Arch) -> list[Arch]:
        """All valid architectures one edit away (no duplicates of ``arch`` itself)."""

    def _moves(self, arch: Arch, specs: Iterable[Hashable], check: bool = False) -> list[Arch]:
        """The architectures of ``specs`` other than ``arch``, one per key, in order (what
        ``neighbors`` returns); with ``check``, specs outside the space are skipped."""
        out: dict[Arch, None] = {}
        for spec in specs:
            if check and not self.is_valid(spec):
                continue
            candidate = self.make(spec)
            if candidate != arch:
                out.setdefault(candidate)
        return list(out)

    def mutate(self, arch: Arch, rng: RngLike = None) -> Arch:
        """One random edit that changes the function (falls back to any different spec)."""
        rng = as_rng(rng)
        options = self.neighbors(arch)
        if not options:
            raise ValueError(f"{arch} has no valid neighbors in space {self.name}")
        different = [a for a in options if a != arch] or options
        return different[int(rng.integers(len(different)))]

    def enumerate(self) -> Iterator[Arch]:
        """Every architecture of a finite space, in the space's official order."""
        raise TypeError(f"space {self.name!r} is too large to enumerate")

    def sample_unique(self, n: int, rng: RngLike = None, max_tries: int | None = None) -> list[Arch]:
        """``n`` architectures with distinct canonical keys (fewer only if the space runs out)."""
        rng = as_rng(rng)
        seen: dict[Arch, None] = {}
        tries = max_tries if max_tries is not None else 50 * n + 1000
        for _ in range(tries):
            if len(seen) >= n:
                break
            seen.setdefault(self.sample(rng))
        return list(seen)

    # ----------------------------------------------------------------- networks
    @abc.abstractmethod
    def build(
        self,
        arch: Arch,
        num_classes: int = 10,
        in_shape: tuple[int, int, int] = (3, 32, 32),
        **build: Any,
    ) -> nn.Module:
        """The real network for ``arch`` (input ``N x C x H x W`` -> logits ``N x num_classes``)."""

    def _check_build(
        self, label: str, options: Mapping[str, Any], allowed: Sequence[str], num_classes: Any, in_shape: Any
    ) -> None:
        """``build``'s arguments, checked before any layer is made: no unknown options, a
        positive int class count, a ``(channels, height, width)`` input shape."""
        if options:
            raise ValueError(f"unknown {label} build options {sorted(options)}; allowed: {', '.join(allowed)}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
            raise ValueError(f"num_classes: {num_classes!r} is not allowed; it must be a positive int")
        if len(in_shape) != 3 or any(not isinstance(v, numbers.Integral) or v < 1 for v in in_shape):
            raise ValueError(f"in_shape: {in_shape!r} is not allowed; it must be (channels, height, width)")

    @abc.abstractmethod
    def cell_graph(self, arch: Arch) -> nx.DiGraph:
        """The cell as a DAG with an ``op`` attribute on every node, for encodings."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


"""Name -> constructor registry, so ``get_space("nb201")`` needs no if-chains."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from search_spaces.base import SearchSpace

_SPACES: dict[str, Callable[..., SearchSpace]] = {}
S = TypeVar("S", bound=type)


def register_space(name: str, aliases: tuple[str, ...] = (), tag: str | None = None) -> Callable[[S], S]:
    """Class decorator: make a space constructible by ``get_space(name, **options)``.

    ``aliases`` construct the same class (Arch values stay tagged ``name``), e.g. a
    benchmark's name for the space it was built on (``nb301`` for ``darts``).  ``tag``
    (default ``name``) is the Arch tag: another parametrisation of a registered space's
    architectures (``darts-edges`` of ``darts``) registers under its own name, so a config's
    ``space`` key picks how it is decoded, while its Archs stay equal to the original's.
    """

    def deco(cls: S) -> S:
        for key in (name, *aliases):
            if key in _SPACES:
                raise ValueError(f"search space {key!r} is already registered")
        cls.name = tag or name
        for key in (name, *aliases):
            _SPACES[key] = cls
        return cls

    return deco


def get_space(name: str, **options: Any) -> SearchSpace:
    """Construct a registered search space by name."""
    try:
        factory = _SPACES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; available: {sorted(_SPACES)}") from None
    return factory(**options)


def as_space(space: SearchSpace | str) -> SearchSpace:
    """``space`` itself, or the registered space of that name."""
    return get_space(space) if isinstance(space, str) else space


def available_spaces() -> list[str]:
    return sorted(_SPACES)

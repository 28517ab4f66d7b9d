"""Search spaces by name: built-in classes, installed plugins, the user's own space objects.

``get_space(spec)`` finds, in order: a space object created in this process (a
:class:`~search_spaces.function_space.FunctionSpace` registers itself under its name), a
built-in class (``"nb201"``, an alias such as ``"nb301"``), a plugin installed under the
``raynas.spaces`` entry-point group, or an object named as ``path/to/file.py:NAME`` or
``package.module:NAME`` (a space object, a space class, or a function returning a space).
"""
from __future__ import annotations

import difflib
from importlib.metadata import entry_points
from typing import Any, Callable, TypeVar

from raynas.loading import is_object_spec, load_object
from search_spaces.base import SearchSpace

#: the entry-point group installed packages register their spaces under
ENTRY_POINT_GROUP = "raynas.spaces"

_SPACES: dict[str, Callable[..., SearchSpace]] = {}
_ALIASES: dict[str, str] = {}  # alias -> the name it stands for
_INSTANCES: dict[str, SearchSpace] = {}
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
        _ALIASES.update({alias: name for alias in aliases})
        return cls

    return deco


def register_instance(space: SearchSpace) -> SearchSpace:
    """Make ``get_space(space.name)`` return ``space`` in this process (a later space of the
    same name replaces it); a built-in name cannot be taken."""
    if space.name in _SPACES:
        raise ValueError(f"search space {space.name!r} is a built-in space; give yours another name")
    _INSTANCES[space.name] = space
    return space


def get_space(spec: str, **options: Any) -> SearchSpace:
    """The space ``spec`` names (see the module docstring); ``options`` go to a class's constructor."""
    if spec in _INSTANCES and not options:
        return _INSTANCES[spec]
    if spec in _SPACES:
        return _SPACES[spec](**options)
    plugins = _plugins()
    if spec in plugins:
        return _as_space_object(plugins[spec].load(), f"plugin {spec!r} ({plugins[spec].value})", options)
    if is_object_spec(spec):
        return _as_space_object(load_object(spec), spec, options)
    known = sorted({*_SPACES, *_INSTANCES, *plugins})
    close = difflib.get_close_matches(spec, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(
        f"unknown search space {spec!r}; {hint}available: {known}, or your own as path/to/file.py:NAME "
        "or package.module:NAME"
    )


def _as_space_object(found: Any, where: str, options: dict[str, Any]) -> SearchSpace:
    """A space from what a plugin or an object spec names: a space, a class or a factory."""
    if isinstance(found, SearchSpace):
        if options:
            raise ValueError(f"{where} is a space object; it takes no options, got {sorted(options)}")
        space = found
    elif callable(found):
        space = found(**options)
    else:
        space = None
    if not isinstance(space, SearchSpace):
        raise ValueError(f"{where} is not a search space (a SearchSpace object, class or function returning one)")
    if space.name not in _SPACES:
        register_instance(space)
    return space


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def as_space(space: SearchSpace | str) -> SearchSpace:
    """``space`` itself, or the space that name or spec gives."""
    return get_space(space) if isinstance(space, str) else space


def available_spaces() -> list[str]:
    """The built-in spaces and their aliases."""
    return sorted(_SPACES)


def space_listing() -> list[tuple[str, str]]:
    """``(name, what it is)`` of every space ``get_space`` finds by name: built-ins, aliases,
    installed plugins and spaces created in this process."""
    rows = [(name, f"alias of {_ALIASES[name]}" if name in _ALIASES else "built-in") for name in sorted(_SPACES)]
    rows += [(name, f"plugin ({ep.value})") for name, ep in sorted(_plugins().items())]
    rows += [(name, f"{type(space).__name__} of this process") for name, space in sorted(_INSTANCES.items())]
    return rows

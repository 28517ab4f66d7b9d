"""The architecture value every part of raynas passes around.

An :class:`Arch` is what searchers deduplicate by, what benchmark tables are keyed by and
what Parquet files store (as ``str(arch)``).  Two architectures that compute the same
function (isomorphic cells, cells differing only in edges that cannot reach the output)
share a canonical ``key`` and therefore compare and hash equal, while each keeps its own
``text`` so that it prints exactly as it was written.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable


@dataclass(frozen=True, eq=False)
class Arch:
    """An immutable, hashable, space-tagged architecture.

    Args:
        space: registry name of the search space (``"nb201"``, ``"nb101"``, ...).
        text: the space's own string form; ``space.parse(text)`` gives this Arch back.
        key: canonical form; equal for architectures that compute the same function.
        spec: the parsed, hashable spec the space works with (not used for equality).
    """

    space: str
    text: str
    key: str
    spec: Hashable = field(repr=False)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Arch):
            return NotImplemented
        return self.space == other.space and self.key == other.key

    def __hash__(self) -> int:
        return hash((self.space, self.key))

    def __str__(self) -> str:
        return self.text

    def same_spec(self, other: "Arch") -> bool:
        """True when both are written identically, not merely equivalent."""
        return self.space == other.space and self.text == other.text

"""Progress bars with an ETA on stderr, for the long steps a user waits on (tracing, fitting,
feature extraction); silent where the caller asks for quiet."""
from __future__ import annotations

import sys
from typing import Any


def progress_bar(items: Any, what: str, unit: str, enabled: bool = True, total: int | None = None) -> Any:
    """``tqdm`` over ``items``, or a bar to ``update`` by hand when ``items`` is a count."""
    from tqdm.auto import tqdm

    if isinstance(items, int):
        return tqdm(total=items, desc=what, unit=unit, file=sys.stderr, disable=not enabled)
    return tqdm(items, desc=what, unit=unit, file=sys.stderr, disable=not enabled, total=total)

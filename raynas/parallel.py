"""Where raynas work runs: the Ray session it joins or starts, and the threads a worker uses.

Ray is started at most once per piece of work, however many batches that work sends to Ray
tasks: :func:`ray_session` joins a running session as it is, and starts one only when none
is running, shutting it down when the outermost ``ray_session`` that started it ends.  A
caller that may or may not need Ray opens ``ray_session(start=False)`` around the whole work;
the first nested ``ray_session()`` then starts Ray and it stays up until that outer block ends.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

_depth = 0
_started_here = False


@contextlib.contextmanager
def ray_session(address: str | None = None, *, start: bool = True, **init_options: Any) -> Iterator[None]:
    """The running Ray session, or one started here (joining ``address``: ``auto`` or
    ``HOST:PORT``; None starts Ray on this machine).

    Args:
        start: ``False`` starts nothing here, but keeps a session that a nested
            ``ray_session()`` starts alive until this block ends.
        init_options: further ``ray.init`` options (default: no dashboard, no worker logs
            on the driver, no start-up messages).
    """
    global _depth, _started_here
    import ray

    _depth += 1
    try:
        if start and not ray.is_initialized():
            options = {"include_dashboard": False, "log_to_driver": False, "logging_level": "warning", **init_options}
            ray.init(address=address, **options)
            _started_here = True
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _started_here:
            _started_here = False
            ray.shutdown()


def use_allotted_threads() -> None:
    """Run torch on the CPUs Ray gave this worker (``OMP_NUM_THREADS``, default one): two
    trials each spinning two OpenMP threads on two cores run many times slower than two
    single-threaded trials."""
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))

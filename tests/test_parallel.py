"""``ray_session``: Ray is started once for a piece of work however many batches it sends to
Ray, joined as it is when already running, and shut down only by the block that started it."""
from __future__ import annotations

import ray

from predictors.cg_data import GraphReader
from raynas.parallel import ray_session
from search_spaces import get_space


def test_one_session_serves_every_chunk_of_a_graph_stream(monkeypatch):
    assert not ray.is_initialized()
    starts = []
    real_init = ray.init

    def counting_init(*args, **kwargs):
        starts.append(kwargs)
        return real_init(*args, num_cpus=2, **kwargs)

    monkeypatch.setattr(ray, "init", counting_init)
    archs = get_space("nb201").sample_unique(9, 0)
    reader = GraphReader(builds={"nb201": {"C": 4, "N": 1}}, use_ray=True, ray_chunk=2)
    batches = list(reader.batches(archs, batch_size=2, chunk=3))  # three chunks, each traced in Ray tasks
    assert sum(b.num_graphs for b in batches) == 9
    assert len(starts) == 1 and not ray.is_initialized()


def test_a_running_session_is_joined_and_left_running():
    with ray_session(num_cpus=1):
        assert ray.is_initialized()
        with ray_session(), ray_session(start=False):
            assert ray.is_initialized()
        assert ray.is_initialized()  # an inner block does not end the session it did not start
    assert not ray.is_initialized()


def test_a_lazy_block_starts_nothing_itself():
    with ray_session(start=False):
        assert not ray.is_initialized()
    assert not ray.is_initialized()

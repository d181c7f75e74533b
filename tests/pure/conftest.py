"""Tier 1 fixtures: one local Ray cluster shared by every scale test of the session (it starts slowly)."""

from __future__ import annotations

import pytest

SLOTS = 8
"""CPU slots of the test cluster: room for a few pools of 2 workers at once (only 2 work at a time)."""


@pytest.fixture(scope="session")
def ray_cluster():
    """A connected ``ray`` (a local cluster of ``SLOTS`` CPU slots), started once; skips when ray is not installed."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install \"chunkwise[ray]\")")
    from chunkwise.scale.cluster import runtime_env

    if not ray.is_initialized():
        ray.init(num_cpus=SLOTS, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env())
    yield ray
    ray.shutdown()

"""The Ray cluster the workers run on: joined (``--ray-address``) or started on this machine (``--workers N``).

Each worker is one Ray actor holding one GPU when the cluster has GPUs, else one CPU slot.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

from ..search.errors import ChunkwiseError

log = logging.getLogger("chunkwise")

INSTALL = 'pip install "chunkwise[ray]"'


def require_ray():
    """Import ray, or raise an error that says what to install."""
    try:
        import ray
    except ImportError as exc:
        raise ChunkwiseError(
            f"--workers, --ray-address and chunkwise batch run on a Ray cluster, but ray is not installed ({exc}); "
            f"install it with: {INSTALL} (or pip install ray)"
        ) from exc
    return ray


def runtime_env() -> dict:
    """Workers import the pack from where this driver does (a checkout linked as ``chunkwise``, or an install)."""
    import chunkwise

    parent = str(Path(list(chunkwise.__path__)[0]).parent)
    path = os.pathsep.join(p for p in (parent, os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


def connect(workers: Optional[int] = None, address: Optional[str] = None):
    """A connected ``ray`` module: the running connection, the cluster at ``address``, or a new local cluster
    with room for ``workers`` workers."""
    ray = require_ray()
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ChunkwiseError(f"--workers must be an integer >= 1, got {workers!r}; use e.g. 2, one per GPU")
    if ray.is_initialized():
        return ray
    if address:
        log.info("chunkwise: joining the Ray cluster at %s", address)
        try:
            ray.init(address=address, runtime_env=runtime_env(), log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ChunkwiseError(
                f"cannot join the Ray cluster at --ray-address {address!r} ({exc}); start one with "
                "'ray start --head' and pass the address it prints, or use --workers N for a local one"
            ) from exc
        return ray
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    count = workers or 1
    if gpus and count > gpus:
        raise ChunkwiseError(
            f"--workers {count} asks for one GPU per worker, but this machine has {gpus}; use --workers {gpus} "
            "or fewer, or join a larger cluster with --ray-address"
        )
    log.info("chunkwise: starting a local Ray cluster for %d worker(s) (%s)", count,
             f"{gpus} GPU(s)" if gpus else "CPU")
    ray.init(num_cpus=max(count, 1), num_gpus=gpus, include_dashboard=False, log_to_driver=False,
             runtime_env=runtime_env())
    return ray


def worker_resources(ray) -> dict:
    """What one worker takes: one GPU when the cluster has GPUs, else one CPU slot."""
    gpus = ray.cluster_resources().get("GPU", 0)
    return {"num_gpus": 1, "num_cpus": 1} if gpus >= 1 else {"num_cpus": 1}

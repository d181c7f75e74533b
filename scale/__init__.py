"""Past one GPU: a chunk's candidates and whole batches of videos over the workers of a Ray cluster.

Optional (``pip install "chunkwise[ray]"``) and never imported by the pack itself: the command line
imports it for ``chunkwise generate --workers N`` / ``--ray-address ADDR`` and ``chunkwise batch``.

- :mod:`.cluster`: joining or starting a cluster, the resources each worker takes;
- :mod:`.workers`: the worker (a Ray actor that loads the pipeline once and keeps it) and the executor that
  spreads each chunk's candidates over the workers for the engine (``search.engine.run_chunks``);
- :mod:`.batch`: ``chunkwise batch JOBS.jsonl``, one run folder per job.

Importing this package imports nothing heavy; Ray is imported when a cluster is asked for.
"""

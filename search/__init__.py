"""Host-agnostic k-step noise search for chunk-wise long video generation.

Imports torch only; never ComfyUI. Hosts (ComfyUI nodes, diffusers, the
command line) implement :class:`I2VDenoiser` and drive :func:`run_chunks`,
or a chunk step by step with :class:`ChunkSampler` and :func:`select_best`.
"""

from .chunk import ChunkSampler, select_best
from .engine import Hooks, LoopSettings, RunResult, SearchSettings, naive_settings, run_chunks, search_chunk
from .errors import ChunkwiseError, InterruptedRun
from .noise import candidate_seed, chunk_seed, make_noise
from .protocols import CandidateScore, FrameSink, I2VDenoiser, MemorySink, SampleResult, Scorer
from .report import REPORT_FORMAT, chunk_line, summarize

__all__ = [
    "CandidateScore",
    "ChunkSampler",
    "ChunkwiseError",
    "FrameSink",
    "Hooks",
    "I2VDenoiser",
    "InterruptedRun",
    "LoopSettings",
    "MemorySink",
    "REPORT_FORMAT",
    "RunResult",
    "SampleResult",
    "Scorer",
    "SearchSettings",
    "candidate_seed",
    "chunk_line",
    "chunk_seed",
    "make_noise",
    "naive_settings",
    "run_chunks",
    "search_chunk",
    "select_best",
    "summarize",
]

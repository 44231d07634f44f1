"""ONNX Runtime sessions: their options, the process-wide thread pool, loading side by side."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import onnxruntime as ort

from whisper_ort.core.folder import ModelError

GRAPH_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
EXECUTION_MODES = {"sequential": ort.ExecutionMode.ORT_SEQUENTIAL, "parallel": ort.ExecutionMode.ORT_PARALLEL}


@dataclass(frozen=True)
class SessionConfig:
    threads: int = 2  # intra-op threads
    inter_threads: int = 1
    graph_opt: str = "all"
    execution_mode: str = "sequential"
    spinning: bool = True  # intra-op threads spin between ops (lower latency, more CPU)
    # With a pool per session: the decoder's and the full projection's threads spin during
    # their runs and stop when a run ends (ONNX Runtime's session.force_spinning_stop), so
    # neither keeps a core from the session that runs next. 8 dev short files, AMD EPYC,
    # 2 threads, same-run A/Bs: beam 5 sum of p50 9.11 / 9.32 s against 9.90 / 10.07 s
    # (the 5-row full projection had waited for the decoder's spinning threads), greedy
    # 5.88 / 5.68 s against 6.06 / 5.81 s. `--keep-spinning` turns it off.
    spin_stop: bool = True
    prepacking: bool = True  # MLAS repacks GEMM weights once (faster GEMMs, a second copy in memory)
    arena: bool = True  # the CPU memory arena (fewer allocations, holds on to peak memory)
    # ONNX Runtime's memory pattern: one preplanned block for a run's activations, per set of
    # input shapes. Off: it bought no speed and cost peak memory. 8 dev short files, 3 repeats,
    # AMD EPYC, 2 threads: sum of p50 5.96-6.09 s off vs 6.13-6.65 s on, peak RSS 399 vs 440 MB.
    mem_pattern: bool = False
    # One intra-op pool for all sessions of the process (ONNX Runtime's global pool). Off by
    # default in the library: once that pool exists, every session the process creates must
    # opt into it (use_per_session_threads=False), another library's too, or ONNX Runtime
    # refuses to create it. On in the CLI (`--per-session-threads` turns it off), whose
    # process holds only our sessions: with the draft there are three, and one pool for them
    # took 0.96x the time (AMD EPYC Zen 3, AVX2, 2 threads, median of 8 interleaved levers
    # rounds over the 8 dev short files, 6 faster; README, Session flags).
    shared_pool: bool = False
    # With the shared pool, also one CPU arena for all sessions, growing by what is asked
    # (not by powers of two). Measured: peak RSS -15 MB over audio/ but none on the levers'
    # files, and the token step ~15 % slower (the K/V that grow each step keep extending
    # it), so off by default; `--shared-arena` turns it on.
    shared_arena: bool = False

    def __post_init__(self):
        if self.shared_pool and not (self.spinning and self.spin_stop):
            flag = "spinning=False" if not self.spinning else "spin_stop=False"
            raise ValueError(f"{flag} is a setting of a session's own thread pool; ONNX Runtime's process-wide pool "
                             "(shared_pool=True) always spins and would ignore it")

    def options(self, role: str = "decoder") -> ort.SessionOptions:
        """Session options; the first call with shared_pool creates the process-wide pool.

        role="encoder": with a pool per session, the encoder's threads do not spin. Its ops
        are long, so spinning gains it nothing, and threads spinning after its run take the
        cores from the decoder that runs next: 3 files, sum of p50 (AMD EPYC, 2 threads),
        1.654 s spinning, 1.551 s not, 1.513 s with the shared pool. role="head" (the full
        projection, logits_head.onnx, run between token steps for beam search and log-probabilities)
        does not spin either, for the same reason: a 5-row beam step took 27 ms (median, in
        the search) with the head's threads spinning, 16 ms without; beam 5 per file -25-33 %.
        With spin_stop (the default) the decoder and the head spin only while they run: each
        ends its run by parking its threads, so the head can spin again (see SessionConfig).
        role="draft" (speculative decoding's 4-bit decoder) is the decoder's, except that its
        weights are always prepacked: MatMulNBits computes from its packed form, and unpacked
        it repacks per run. `--no-prepacking` on jfk + libri_198 (AMD EPYC Zen 3, 2 threads):
        22.3 s and 528 MB peak RSS with the draft unpacked, 4.0 s and 371 MB with no draft."""
        if self.graph_opt not in GRAPH_LEVELS:
            raise ValueError(f"--graph-opt must be one of {', '.join(GRAPH_LEVELS)}")
        if self.execution_mode not in EXECUTION_MODES:
            raise ValueError(f"--execution-mode must be one of {', '.join(EXECUTION_MODES)}")
        _fixed_mmap_threshold()
        opts = ort.SessionOptions()
        if (self.shared_pool and _shared_pool(self.threads, self.inter_threads)) or _POOL_SIZES is not None:
            opts.use_per_session_threads = False  # ONNX Runtime's rule once the global pool exists
            if self.shared_arena and self.arena and _shared_arena():
                opts.add_session_config_entry("session.use_env_allocators", "1")
        else:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = self.inter_threads
        opts.graph_optimization_level = GRAPH_LEVELS[self.graph_opt]
        opts.execution_mode = EXECUTION_MODES[self.execution_mode]
        per_session = _POOL_SIZES is None
        stop = self.spinning and self.spin_stop and per_session and role in ("decoder", "draft", "head")
        spin = stop or (self.spinning and (role in ("decoder", "draft") or not per_session))
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        if stop:
            opts.add_session_config_entry("session.force_spinning_stop", "1")
        opts.add_session_config_entry("session.disable_prepacking", "0" if self.prepacking or role == "draft" else "1")
        opts.enable_cpu_mem_arena = self.arena
        opts.enable_mem_pattern = self.mem_pattern
        opts.log_severity_level = 3  # errors only: keep stderr readable
        return opts

    def to_dict(self) -> dict:
        return {**asdict(self), "process_pool": pool_threads()}


_POOL_SIZES: tuple[int, int] | None = None


def _shared_pool(threads: int, inter_threads: int) -> bool:
    """Create the process-wide pool once; False when ONNX Runtime was already set up without it."""
    global _POOL_SIZES
    if _POOL_SIZES is None:
        ort.set_default_logger_severity(3)
        try:
            ort.capi._pybind_state.set_global_thread_pool_sizes(threads, inter_threads)
        except Exception:  # the environment already exists (a session was made first): per-session pools
            return False
        _POOL_SIZES = (threads, inter_threads)
    elif _POOL_SIZES != (threads, inter_threads):
        print(f"whisper-ort: the process-wide thread pool has {_POOL_SIZES[0]} threads; {threads} asked for", file=sys.stderr)
    return True


_MMAP_THRESHOLD_SET = False


def _fixed_mmap_threshold(size: int = 128 * 1024) -> None:
    """glibc raises its mmap threshold each time a large block is freed (up to 32 MB), after
    which arrays of a few MB come from the heap and stay there. A fixed threshold keeps them
    mmapped and returned on free: peak RSS 388 vs 399 MB over the 8 dev short files (AMD
    EPYC, 2 threads, same speed). Process-wide, set once when the first session is
    configured; left alone where the user set MALLOC_MMAP_THRESHOLD_, and nothing on other
    C libraries."""
    global _MMAP_THRESHOLD_SET
    if _MMAP_THRESHOLD_SET or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    _MMAP_THRESHOLD_SET = True
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, size)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


_ARENA = False


def _shared_arena() -> bool:
    """Register one process-wide CPU arena (extend strategy: same as requested) once."""
    global _ARENA
    if not _ARENA:
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        try:
            ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, 1, -1, -1))  # max, kSameAsRequested, defaults
        except Exception:  # another component registered one first: the sessions use theirs
            pass
        _ARENA = True
    return _ARENA


def pool_threads() -> tuple[int, int] | None:
    """(intra, inter) of the process-wide pool, None while there is none."""
    return _POOL_SIZES


def load_session(path: Path, options: ort.SessionOptions) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types; name the file, keep one line
        cause = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: cannot be loaded by ONNX Runtime ({cause[:300]})") from None


def load_sessions(paths: list[Path], options: list[ort.SessionOptions]) -> list[ort.InferenceSession]:
    """Load the sessions side by side (each path with its options): ONNX Runtime releases
    the GIL while it reads, optimizes and prepacks a model, so two cores load two models at once."""
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        futures = [pool.submit(load_session, p, o) for p, o in zip(paths, options)]
        return [f.result() for f in futures]  # the first failure (a ModelError naming its file) is raised

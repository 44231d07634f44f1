"""The model folder: checks before any audio is read, and ONNX Runtime sessions built once."""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

ENCODER = "encoder_model.onnx"
DECODER_FIRST = "decoder_model.onnx"
DECODER_WITH_PAST = "decoder_with_past_model.onnx"
DECODER_MERGED = "decoder_model_merged.onnx"
DECODER_MHA = "decoder_mha.onnx"  # our own decoder graph (whisper_ort.decoder_graph); the encoder then outputs cross K/V
LOGITS_HEAD = "logits_head.onnx"  # its FP32 output projection alone, over embed_tokens.npy (timestamps, --full-logits)
CONFIGS = ("config.json", "generation_config.json", "tokenizer.json", "preprocessor_config.json")
REQUIRED_FILES = (ENCODER, DECODER_FIRST, DECODER_WITH_PAST) + CONFIGS
REQUIRED_MERGED = (ENCODER, DECODER_MERGED) + CONFIGS
EMBEDDINGS = "embed_tokens.npy"  # the mha decoder's token embeddings, read row by row (EmbeddingRows)
MHA_HEAD_OUTPUTS = ("hidden", "candidates", "lower", "upper")  # the mha decoder's bounded logits (decoder_graph._bounded_head)
REQUIRED_MHA = (ENCODER, DECODER_MHA, EMBEDDINGS, LOGITS_HEAD) + CONFIGS
REQUIRED_GENERATION_KEYS = ("decoder_start_token_id", "eos_token_id", "no_timestamps_token_id", "lang_to_id", "task_to_id", "suppress_tokens", "begin_suppress_tokens")

GRAPH_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
EXECUTION_MODES = {"sequential": ort.ExecutionMode.ORT_SEQUENTIAL, "parallel": ort.ExecutionMode.ORT_PARALLEL}


class ModelError(RuntimeError):
    """The model folder is missing files or holds files that do not fit together."""


@dataclass(frozen=True)
class SessionConfig:
    threads: int = 2  # intra-op threads
    inter_threads: int = 1
    graph_opt: str = "all"
    execution_mode: str = "sequential"
    spinning: bool = True  # intra-op threads spin between ops (lower latency, more CPU)
    prepacking: bool = True  # MLAS repacks GEMM weights once (faster GEMMs, a second copy in memory)
    arena: bool = True  # the CPU memory arena (fewer allocations, holds on to peak memory)
    mem_pattern: bool = True  # plan one block for all activations from the first run (faster, higher peak)
    # One intra-op pool for all sessions of the process. With a pool per session, the encoder's
    # threads go on spinning while the decoder runs and the two fight for the cores. Off by
    # default in the library: once ONNX Runtime has a global pool, *every* session of the
    # process must use it, other libraries' included. The CLI turns it on.
    shared_pool: bool = False
    # With the shared pool, also one CPU arena for all sessions, growing by what is asked
    # (not by powers of two). Measured: peak RSS -15 MB over audio/ but none on the levers'
    # files, and the token step ~15 % slower (the K/V that grow each step keep extending
    # it), so off by default; `--shared-arena` turns it on.
    shared_arena: bool = False

    def options(self) -> ort.SessionOptions:
        """Session options; the first call with shared_pool creates the process-wide pool."""
        if self.graph_opt not in GRAPH_LEVELS:
            raise ValueError(f"--graph-opt must be one of {', '.join(GRAPH_LEVELS)}")
        if self.execution_mode not in EXECUTION_MODES:
            raise ValueError(f"--execution-mode must be one of {', '.join(EXECUTION_MODES)}")
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
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spinning else "0")
        opts.add_session_config_entry("session.disable_prepacking", "0" if self.prepacking else "1")
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
        _fixed_mmap_threshold()
    elif _POOL_SIZES != (threads, inter_threads):
        print(f"whisper-ort: the process-wide thread pool has {_POOL_SIZES[0]} threads; {threads} asked for", file=sys.stderr)
    return True


def _fixed_mmap_threshold(size: int = 128 * 1024) -> None:
    """glibc raises its mmap threshold each time a large block is freed (up to 32 MB), after
    which activations of a few MB come from the heap and stay there. A fixed threshold
    keeps them mmapped and returned on free: peak RSS -14 MB over the short files. Part of
    the process-wide setup that comes with the shared pool; nothing on other C libraries."""
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


def check_model_folder(folder: str | Path, required=REQUIRED_FILES) -> dict:
    """Raise ModelError listing every missing or unreadable file; return the parsed configs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found (run `make model` or `whisper-ort export`)")
    problems = []
    for name in required:
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size == 0:
            problems.append(f"{path}: empty")
    configs = {}
    for name in ("config.json", "generation_config.json", "preprocessor_config.json"):
        path = folder / name
        if path.is_file() and path.stat().st_size:
            try:
                configs[name] = json.loads(path.read_text())
            except (ValueError, OSError) as exc:
                problems.append(f"{path}: unreadable ({exc})")
    gen = configs.get("generation_config.json")
    if gen is not None:
        missing = [k for k in REQUIRED_GENERATION_KEYS if k not in gen]
        if missing:
            problems.append(f"{folder / 'generation_config.json'}: missing required ids: {', '.join(missing)}")
    if problems:
        raise ModelError("model folder is not usable:\n  " + "\n  ".join(problems))
    return configs


def _session(path: Path, options: ort.SessionOptions) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types; name the file, keep one line
        cause = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: cannot be loaded by ONNX Runtime ({cause[:300]})") from None


class BoundedLogits:
    """The mha decoder's last-position logits, as its bounded head gives them
    (decoder_graph._bounded_head): the hidden state the exact logits come from, and the
    (row, token) pairs that can be a row's argmax once the step's mask (the logit filters'
    -inf) is added. argmax() is exact: a row with one candidate has its argmax; several
    are scored exactly from their FP32 embedding rows (the projection is tied). `lower`
    and `upper` (B, vocab) are there when the sessions fetch them (fetch_bounds)."""

    def __init__(self, hidden: np.ndarray, candidates: np.ndarray, mask: np.ndarray, sessions: WhisperSessions,
                 lower: np.ndarray | None = None, upper: np.ndarray | None = None):
        self.hidden, self.candidates, self.mask, self._sessions = hidden, candidates, mask, sessions
        self.lower, self.upper = lower, upper
        self.n_candidates: list[int] = []  # tokens that could be the argmax, per row

    @property
    def shape(self) -> tuple[int, int]:
        return (self.hidden.shape[0], self._sessions.vocab_size)

    def columns(self, ids) -> np.ndarray:
        """Exact logits (B, len(ids)) of some tokens."""
        return self._sessions.exact_logits(self.hidden, ids)

    def full(self) -> np.ndarray:
        """Exact logits (B, vocab), the mask added."""
        return self._sessions.exact_logits(self.hidden) + self.mask

    def argmax(self) -> np.ndarray:
        rows, tokens = self.candidates
        batch = self.hidden.shape[0]
        if batch == 1 and len(tokens) == 1:  # the common case: one token can win
            self.n_candidates = [1]
            return tokens.copy()
        out = np.empty(batch, dtype=np.int64)
        self.n_candidates = []
        for row in range(batch):
            candidates = tokens[rows == row]
            if len(candidates) == 0:  # NaN in the head: take the long way
                out[row] = int(np.argmax(self.full()[row]))
            elif len(candidates) == 1:
                out[row] = candidates[0]
            else:  # NonZero lists them in increasing id, so ties go to the lowest, as np.argmax's
                out[row] = candidates[int(np.argmax(self._sessions.exact_logits(self.hidden[row : row + 1], candidates)[0]))]
            self.n_candidates.append(len(candidates))
        return out


class EmbeddingRows:
    """Rows of a (vocab, d_model) .npy table read from the file as needed (pread, ~4 us a
    row). Neither loaded nor memory-mapped: a mapping's fault-around pulls in 64 KB around
    every row touched, which over a few hundred distinct tokens is most of the 106 MB."""

    def __init__(self, path: Path):
        try:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                self.shape, fortran, self.dtype = read_header(f)
                self._offset = f.tell()
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: unreadable ({exc})") from None
        if fortran or len(self.shape) != 2 or path.stat().st_size < self._offset + self.shape[0] * self.shape[1] * self.dtype.itemsize:
            raise ModelError(f"{path}: not a complete (vocab, d_model) table")
        self._row = self.shape[1] * self.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY)

    @property
    def data_offset(self) -> int:
        """Where the rows start in the file (after the .npy header)."""
        return self._offset

    def __getitem__(self, ids: np.ndarray) -> np.ndarray:
        if ids.size == 1:  # a token step of one row: the fewest calls (they run with cold caches)
            row = os.pread(self._fd, self._row, self._offset + int(ids.flat[0]) * self._row)
            return np.frombuffer(row, dtype=self.dtype).reshape(*ids.shape, self.shape[1])
        out = np.empty((*ids.shape, self.shape[1]), dtype=self.dtype)
        rows = out.reshape(-1, self.shape[1])
        for k, i in enumerate(ids.ravel().tolist()):
            rows[k] = np.frombuffer(os.pread(self._fd, self._row, self._offset + i * self._row), dtype=self.dtype)
        return out

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


def _sessions(paths: list[Path], options: ort.SessionOptions) -> list[ort.InferenceSession]:
    """Load the sessions side by side: ONNX Runtime releases the GIL while it reads,
    optimizes and prepacks a model, so two cores load two models at once."""
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        futures = [pool.submit(_session, p, options) for p in paths]
        return [f.result() for f in futures]  # the first failure (a ModelError naming its file) is raised


def decoder_kind(folder: Path) -> str:
    """"mha" (our decoder graph), "merged" (optimum's merged decoder, in a folder without the
    two separate ones) or "pair" (decoder + decoder_with_past)."""
    if (folder / DECODER_MHA).is_file():
        return "mha"
    if not (folder / DECODER_FIRST).is_file() and (folder / DECODER_MERGED).is_file():
        return "merged"
    return "pair"


class WhisperSessions:
    """Encoder and decoder sessions over one model folder.

    Two decoder sessions (decoder_model for the prompt, decoder_with_past for later steps)
    or, in a folder that only has it, the merged decoder: one session, one copy of the
    weights, its `use_cache_branch` input choosing the branch.
    """

    def __init__(self, folder: str | Path, config: SessionConfig = SessionConfig()):
        self.folder = Path(folder)
        self.kind = decoder_kind(self.folder)
        self.merged = self.kind == "merged"
        required = {"mha": REQUIRED_MHA, "merged": REQUIRED_MERGED, "pair": REQUIRED_FILES}[self.kind]
        self.configs = check_model_folder(self.folder, required)
        self.config = config
        self.t_step_run = 0.0
        opts = config.options()
        if self.kind == "pair":
            self.encoder, self.decoder_first, self.decoder_with_past = _sessions(
                [self.folder / ENCODER, self.folder / DECODER_FIRST, self.folder / DECODER_WITH_PAST], opts)
        else:
            decoder = DECODER_MHA if self.kind == "mha" else DECODER_MERGED
            self.encoder, self.decoder_first = _sessions([self.folder / ENCODER, self.folder / decoder], opts)
            self.decoder_with_past = self.decoder_first
        model_cfg = self.configs["config.json"]
        self.vocab_size = int(model_cfg["vocab_size"])
        self.n_layers = int(model_cfg["decoder_layers"])
        # Output names in the order the next step takes them back as inputs.
        self.kv_names = [f"{layer}.{kind}.{kv}" for layer in range(self.n_layers) for kind in ("decoder", "encoder") for kv in ("key", "value")]
        self._self_kv = [n for n in self.kv_names if ".decoder." in n]
        self._cross_kv = [n for n in self.kv_names if ".encoder." in n]
        # Feed and fetch names, built once: the step below runs once per token.
        self._first_outputs = ["logits"] + [f"present.{n}" for n in self.kv_names]
        self._step_outputs = ["logits"] + [f"present.{n}" for n in self._self_kv]
        self._past_self = [f"past_key_values.{n}" for n in self._self_kv]
        self._past_cross = [f"past_key_values.{n}" for n in self._cross_kv]
        self._merged_step_feeds: dict[int, dict] = {}  # batch size -> the merged decoder's constant inputs
        if self.kind == "mha":
            self._mha_past = [f"past.{i}.{kv}" for i in range(self.n_layers) for kv in ("key", "value")]
            self._mha_cross = [f"cross.{i}.{kv}" for i in range(self.n_layers) for kv in ("key", "value")]
            self._mha_present = [f"present.{i}.{kv}" for i in range(self.n_layers) for kv in ("key", "value")]
            self.fetch_bounds = False  # also fetch the (B, vocab) lower/upper bounds (tests; not needed to decode)
            self._mha_fetch = {bounds: [*MHA_HEAD_OUTPUTS[: 4 if bounds else 2], *self._mha_present] for bounds in (False, True)}
            self._no_mask = np.zeros((1, self.vocab_size), dtype=np.float32)
            self._projection: ort.InferenceSession | None = None  # the FP32 output projection, built when full logits are asked for
            self._embeddings = EmbeddingRows(self.folder / EMBEDDINGS)
            self._check_mha_shapes()
        else:
            self._check_shapes()

    def _check_mha_shapes(self) -> None:
        outputs = self.decoder_first.get_outputs()
        if tuple(o.name for o in outputs[: len(MHA_HEAD_OUTPUTS)]) != MHA_HEAD_OUTPUTS:
            raise ModelError(f"{self.folder / DECODER_MHA}: an older graph without the bounded logits (rebuild with `whisper-ort optimize --force`)")
        vocab = {o.name: o for o in outputs}["lower"].shape[-1]
        if vocab != self.vocab_size:
            raise ModelError(f"{self.folder / DECODER_MHA}: {vocab} logits, config.json says {self.vocab_size}")
        missing = set(self._mha_past + self._mha_cross) - {i.name for i in self.decoder_first.get_inputs()}
        if missing or [o.name for o in self.encoder.get_outputs()] != self._mha_cross or self._embeddings.shape != (self.vocab_size, int(self.configs["config.json"]["d_model"])):
            raise ModelError(f"{self.folder}: encoder and {DECODER_MHA} do not fit together (rebuild with `whisper-ort optimize`)")

    def batch_of(self, states) -> int:
        """Rows in what encode() returned: an array, or the mha variant's list of cross K/V."""
        return states[0].shape[0] if self.kind == "mha" else states.shape[0]

    def _check_shapes(self) -> None:
        logits = self.decoder_first.get_outputs()[0]
        if logits.shape[-1] != self.vocab_size:
            raise ModelError(f"{self.folder / DECODER_FIRST}: {logits.shape[-1]} logits, config.json says {self.vocab_size}")
        wanted = {f"past_key_values.{n}" for n in self.kv_names}
        have = {i.name for i in self.decoder_with_past.get_inputs()}
        if not wanted <= have:
            raise ModelError(f"{self.folder / DECODER_WITH_PAST}: missing inputs {sorted(wanted - have)[:3]}...")

    def _merged_step_constants(self, batch: int) -> dict:
        """The cache branch reads cross K/V from the past; encoder states are an unused input."""
        if batch not in self._merged_step_feeds:
            self._merged_step_feeds[batch] = {
                "encoder_hidden_states": np.zeros((batch, 1, 512), dtype=np.float32),
                "use_cache_branch": np.array([True]),
            }
        return self._merged_step_feeds[batch]

    def exact_logits(self, hidden: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
        """FP32 logits (B, len(ids)) of the mha decoder's hidden states from the tokens'
        embedding rows; ids=None: all of them, through logits_head.onnx, loaded on first use
        (only timestamp decoding needs every logit: +106 MB of prepacked weights then)."""
        if ids is not None:
            return hidden @ self._embeddings[np.asarray(ids, dtype=np.int64)].T
        if self._projection is None:
            self._projection = _session(self.folder / LOGITS_HEAD, self.config.options())
        return self._projection.run(None, {"hidden": hidden})[0]

    def encode(self, mel: np.ndarray):
        """Encoder states (B, frames, d_model); in the mha variant each layer's cross K/V."""
        outs = self.encoder.run(None, {"input_features": mel})
        return outs if self.kind == "mha" else outs[0]

    def _run_mha(self, feeds: dict, mask: np.ndarray | None) -> tuple[BoundedLogits, list]:
        mask = self._no_mask if mask is None else mask
        feeds["logit_mask"] = mask
        fetch = self._mha_fetch[self.fetch_bounds]
        heads = len(fetch) - len(self._mha_present)
        start = time.perf_counter()
        outs = self.decoder_with_past.run(fetch, feeds)
        self.t_step_run += time.perf_counter() - start  # time inside ONNX Runtime, for the overhead figure
        return BoundedLogits(*outs[:2], mask, self, *outs[2:heads]), outs[heads:]

    def first_step(self, input_ids: np.ndarray, encoder_states: np.ndarray, mask: np.ndarray | None = None):
        """Prompt through decoder_model.onnx: (last-position logits, self K/V, cross K/V).
        mask (mha variant): 0 or -inf per token, added to its logits (the logit filters)."""
        if self.kind == "mha":
            cross = list(encoder_states)  # K, V of each layer, as the encoder wrote them
            empty = np.zeros((input_ids.shape[0], 8, 0, 64), dtype=np.float32)
            feeds = {"inputs_embeds": self._embeddings[input_ids], "position_ids": np.arange(input_ids.shape[1], dtype=np.int64)}
            feeds.update(dict.fromkeys(self._mha_past, empty))
            feeds.update(zip(self._mha_cross, cross))
            logits, present = self._run_mha(feeds, mask)
            return logits, present, cross
        feeds = {"input_ids": input_ids, "encoder_hidden_states": encoder_states}
        if self.merged:  # the no-cache branch ignores the past; it only needs well-formed empty inputs
            empty = np.zeros((input_ids.shape[0], 8, 0, 64), dtype=np.float32)
            feeds.update({f"past_key_values.{n}": empty for n in self.kv_names})
            feeds["use_cache_branch"] = np.array([False])
        outs = self.decoder_first.run(self._first_outputs, feeds)
        kv = dict(zip(self.kv_names, outs[1:]))
        return outs[0][:, -1, :], [kv[n] for n in self._self_kv], [kv[n] for n in self._cross_kv]

    def step(self, input_ids: np.ndarray, self_kv: list, cross_kv: list, mask: np.ndarray | None = None):
        """One token per row through decoder_with_past_model.onnx: (logits, new self K/V)."""
        if self.kind == "mha":
            feeds = {"inputs_embeds": self._embeddings[input_ids], "position_ids": np.array([self_kv[0].shape[2]], dtype=np.int64)}
            feeds.update(zip(self._mha_past, self_kv))
            feeds.update(zip(self._mha_cross, cross_kv))
            return self._run_mha(feeds, mask)
        feeds = {"input_ids": input_ids}
        feeds.update(zip(self._past_self, self_kv))
        feeds.update(zip(self._past_cross, cross_kv))
        if self.merged:
            feeds.update(self._merged_step_constants(input_ids.shape[0]))
        start = time.perf_counter()
        outs = self.decoder_with_past.run(self._step_outputs, feeds)
        self.t_step_run += time.perf_counter() - start  # time inside ONNX Runtime, for the overhead figure
        return outs[0][:, -1, :], outs[1:]

"""The decoder of each variant behind one interface: encode, first step, step.

`open_sessions(folder, config)` picks the class by the folder's files (core/folder.py):

- ExportSessions: optimum's export: decoder_model.onnx runs the prompt and returns every
  layer's self and cross K/V, decoder_with_past_model.onnx each later token.
- MhaSessions: the mha variant: its encoder also returns every layer's cross K/V, and
  one graph (decoder_mha.onnx) runs the prompt and each later token, returning bounded
  logits (BoundedLogits) instead of the FP32 projection of every token.

Both: `encode(mel) -> states`, `batch_of(states)`, `first_step(ids, states, mask) ->
(logits, self_kv, cross_kv)`, `step(ids, self_kv, cross_kv, mask) -> (logits, self_kv)`.
Logits are (rows, vocab) for the last position, or BoundedLogits; `mask` (0 / -inf per
token, the logit filters') is used by the mha decoder, which needs it to pick candidates.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from whisper_ort.core.folder import (
    ALIGNMENT_OUTPUTS,
    CROSS_LAYOUT,
    CROSS_ROWS,
    DECODER_DRAFT,
    DECODER_FIRST,
    DECODER_MHA,
    DECODER_WITH_PAST,
    EMBEDDINGS,
    ENCODER,
    HEAD_LOG_PROBS,
    HEAD_POSITIONS,
    LOGITS_HEAD,
    MHA_HEAD_OUTPUTS,
    REQUIRED,
    ModelError,
    check_model_folder,
    variant_of,
)
from whisper_ort.core.session import SessionConfig, load_session, load_sessions

DRAFT_OUTPUT = "token"  # the draft graph's argmax (build/draft_graph.py)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log_softmax; its own output array is the only one allocated besides exp's."""
    out = logits - logits.max(axis=-1, keepdims=True)
    out -= np.log(np.exp(out).sum(axis=-1, keepdims=True))
    return out


class WhisperSessions:
    """What both variants share: the folder's checks and configs, the model's sizes, the
    K/V names, and the time spent inside the token step's session.run."""

    variant = ""
    sessions: tuple[str, ...] = ()  # the graphs this variant loads, in the order of its attributes
    cross_per_window = False  # step() takes one cross K/V row per window for windows x beams rows (the mha decoder)

    def __init__(self, folder: str | Path, config: SessionConfig | None = None):
        self.folder = Path(folder)
        self.configs = check_model_folder(self.folder, REQUIRED[self.variant])
        self.config = config = config or SessionConfig()
        self.t_step_run = 0.0  # seconds inside the token step's session.run calls (the loop-overhead figure)
        model_cfg = self.configs["config.json"]
        self.vocab_size = int(model_cfg["vocab_size"])
        self.n_layers = int(model_cfg["decoder_layers"])
        self.d_model = int(model_cfg["d_model"])
        self._loaded = load_sessions([self.folder / name for name in self.sessions],
                                     [config.options("encoder" if name == ENCODER else "decoder") for name in self.sessions])

    def _timed_run(self, session: ort.InferenceSession, fetch: list[str], feeds: dict) -> list:
        start = time.perf_counter()
        outs = session.run(fetch, feeds)
        self.t_step_run += time.perf_counter() - start
        return outs

    def _empty_kv(self, batch: int) -> np.ndarray:
        return np.zeros((batch, 8, 0, 64), dtype=np.float32)

    def log_probs(self, logits) -> np.ndarray:
        """log_softmax of a step's FP32 logits (rows, vocab): beam search's scores."""
        return log_softmax(np.asarray(logits, dtype=np.float32))

    def step_log_probs(self, input_ids: np.ndarray, self_kv: list, cross_kv: list) -> tuple[np.ndarray, list]:
        """One token per row: (log_softmax of its FP32 logits (rows, vocab), new self K/V)."""
        logits, self_kv = self.step(input_ids, self_kv, cross_kv)
        return self.log_probs(logits), self_kv

    def check_alignment(self) -> None:
        """Raise ModelError unless these sessions can run word timestamps' pass (core/timing.py)."""
        raise ModelError(f"{self.folder}: word timestamps need the mha variant (build it with `whisper-ort optimize`)")

    def alignment(self, sequence: np.ndarray, cross: list) -> tuple[np.ndarray, np.ndarray]:
        """Word timestamps' decoder pass (core/timing.py); only the mha variant has it."""
        self.check_alignment()
        raise NotImplementedError


class ExportSessions(WhisperSessions):
    """optimum's export: three sessions, the FP32 logits of every token each step."""

    variant = "export"
    sessions = (ENCODER, DECODER_FIRST, DECODER_WITH_PAST)

    def __init__(self, folder: str | Path, config: SessionConfig | None = None):
        super().__init__(folder, config)
        self.encoder, self.decoder_first, self.decoder_with_past = self._loaded
        # Output names in the order the next step takes them back as inputs, built once.
        names = [f"{layer}.{kind}.{kv}" for layer in range(self.n_layers) for kind in ("decoder", "encoder") for kv in ("key", "value")]
        self._kv_names = names
        self._self_kv = [n for n in names if ".decoder." in n]
        self._cross_kv = [n for n in names if ".encoder." in n]
        self._first_outputs = ["logits"] + [f"present.{n}" for n in names]
        self._step_outputs = ["logits"] + [f"present.{n}" for n in self._self_kv]
        self._past_self = [f"past_key_values.{n}" for n in self._self_kv]
        self._past_cross = [f"past_key_values.{n}" for n in self._cross_kv]
        self._check_shapes()

    def _check_shapes(self) -> None:
        logits = self.decoder_first.get_outputs()[0]
        if logits.shape[-1] != self.vocab_size:
            raise ModelError(f"{self.folder / DECODER_FIRST}: {logits.shape[-1]} logits, config.json says {self.vocab_size}")
        wanted = {f"past_key_values.{n}" for n in self._kv_names}
        have = {i.name for i in self.decoder_with_past.get_inputs()}
        if not wanted <= have:
            raise ModelError(f"{self.folder / DECODER_WITH_PAST}: missing inputs {sorted(wanted - have)[:3]}...")

    def encode(self, mel: np.ndarray) -> np.ndarray:
        """Encoder states (B, frames, d_model)."""
        return self.encoder.run(None, {"input_features": mel})[0]

    def batch_of(self, states: np.ndarray) -> int:
        return states.shape[0]

    def first_step(self, input_ids: np.ndarray, states: np.ndarray, mask: np.ndarray | None = None):
        """The prompt: (last-position logits, self K/V, cross K/V). The mask is not used:
        the logit filters run on the full logits."""
        outs = self.decoder_first.run(self._first_outputs, {"input_ids": input_ids, "encoder_hidden_states": states})
        kv = dict(zip(self._kv_names, outs[1:]))
        return outs[0][:, -1, :], [kv[n] for n in self._self_kv], [kv[n] for n in self._cross_kv]

    def step(self, input_ids: np.ndarray, self_kv: list, cross_kv: list, mask: np.ndarray | None = None):
        """One token per row: (logits, new self K/V)."""
        feeds = {"input_ids": input_ids}
        feeds.update(zip(self._past_self, self_kv))
        feeds.update(zip(self._past_cross, cross_kv))
        outs = self._timed_run(self.decoder_with_past, self._step_outputs, feeds)
        return outs[0][:, -1, :], outs[1:]


class MhaSessions(WhisperSessions):
    """The mha variant: the encoder returns cross K/V per layer, one decoder graph with
    bounded logits, token embeddings read row by row from embed_tokens.npy."""

    variant = "mha"
    sessions = (ENCODER, DECODER_MHA)
    cross_per_window = True

    def __init__(self, folder: str | Path, config: SessionConfig | None = None):
        super().__init__(folder, config)
        self.encoder, self.decoder = self._loaded
        self._past = [f"past.{i}.{kv}" for i in range(self.n_layers) for kv in ("key", "value")]
        self._cross = [f"cross.{i}.{kv}" for i in range(self.n_layers) for kv in ("key", "value")]
        self._present = [f"present.{i}.{kv}" for i in range(self.n_layers) for kv in ("key", "value")]
        self.fetch_bounds = False  # also fetch the (B, vocab) lower/upper bounds (tests; not needed to decode)
        self._fetch = {bounds: [*MHA_HEAD_OUTPUTS[: 4 if bounds else 2], *self._present] for bounds in (False, True)}
        self._no_mask = np.zeros((1, self.vocab_size), dtype=np.float32)
        self._last = np.array([-1], dtype=np.int64)  # head_positions of a token step
        self._no_positions = np.zeros(0, dtype=np.int64)  # head_positions that score nothing: the bounded head runs on 0 rows
        self._hidden_fetch = [ALIGNMENT_OUTPUTS[1], *self._present]  # every position's final hidden state, then the K/V
        self._projection: ort.InferenceSession | None = None  # the FP32 output projection, loaded when full logits are asked for
        self._tail: tuple[int, np.ndarray] | None = None  # (first id, embedding rows from it on, transposed): timestamp_logits
        self._head_log_probs = False  # the projection has a LogSoftmax output (folders built since beam search scores through it)
        self._embeddings = EmbeddingRows(self.folder / EMBEDDINGS)
        self._draft: ort.InferenceSession | None = None  # speculative decoding's, loaded when it first runs
        self._draft_loading: Future | None = None  # ... or ahead, beside the encoder (prefetch_draft)
        self._check_shapes()

    def _check_shapes(self) -> None:
        outputs = self.decoder.get_outputs()
        if len(outputs) > 1 and outputs[1].name == "candidates":
            raise ModelError(f"{self.folder / DECODER_MHA}: an older graph whose candidates are listed by NonZero (rebuild with `whisper-ort optimize`)")
        if tuple(o.name for o in outputs[: len(MHA_HEAD_OUTPUTS)]) != MHA_HEAD_OUTPUTS:
            raise ModelError(f"{self.folder / DECODER_MHA}: an older graph without the bounded logits (rebuild with `whisper-ort optimize --force`)")
        vocab = {o.name: o for o in outputs}["lower"].shape[-1]
        if vocab != self.vocab_size:
            raise ModelError(f"{self.folder / DECODER_MHA}: {vocab} logits, config.json says {self.vocab_size}")
        if HEAD_POSITIONS not in {i.name for i in self.decoder.get_inputs()}:
            raise ModelError(f"{self.folder / DECODER_MHA}: an older graph whose head scores the last position only (rebuild with `whisper-ort optimize`)")
        meta = self.decoder.get_modelmeta().custom_metadata_map
        if meta.get(CROSS_ROWS[0]) != CROSS_ROWS[1]:
            raise ModelError(f"{self.folder / DECODER_MHA}: an older graph with cross K/V per row (rebuild with `whisper-ort optimize --force`)")
        if meta.get(CROSS_LAYOUT[0]) != CROSS_LAYOUT[1]:
            raise ModelError(f"{self.folder / DECODER_MHA}: an older graph with cross V not transposed (rebuild with `whisper-ort optimize`)")
        missing = set(self._past + self._cross) - {i.name for i in self.decoder.get_inputs()}
        if missing or [o.name for o in self.encoder.get_outputs()] != self._cross or self._embeddings.shape != (self.vocab_size, self.d_model):
            raise ModelError(f"{self.folder}: encoder and {DECODER_MHA} do not fit together (rebuild with `whisper-ort optimize`)")

    def encode(self, mel: np.ndarray) -> list[np.ndarray]:
        """Each layer's cross-attention K (B, heads, frames, head_dim) and V (B, heads, head_dim, frames)."""
        return self.encoder.run(None, {"input_features": mel})

    def batch_of(self, states: list[np.ndarray]) -> int:
        return states[0].shape[0]

    def exact_logits(self, hidden: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
        """FP32 logits (B, len(ids)) of the decoder's hidden states from the tokens'
        embedding rows; ids=None: all of them, through logits_head.onnx, loaded on first use
        (beam search, sampling and log-probabilities need every logit: +106 MB of prepacked weights then)."""
        if ids is not None:
            return hidden @ self._embeddings[np.asarray(ids, dtype=np.int64)].T
        return self.projection.run(["logits"], {"hidden": hidden})[0]

    @property
    def projection(self) -> ort.InferenceSession:
        """logits_head.onnx (the FP32 output projection), loaded on first use."""
        if self._projection is None:
            self._projection = load_session(self.folder / LOGITS_HEAD, self.config.options("head"))
            self._head_log_probs = HEAD_LOG_PROBS in {o.name for o in self._projection.get_outputs()}
        return self._projection

    def log_probs(self, logits) -> np.ndarray:
        """log_softmax of the FP32 logits, from the head's own LogSoftmax (a folder built
        before it had one: numpy's). BoundedLogits: of its hidden states, mask added."""
        if not isinstance(logits, BoundedLogits):
            return super().log_probs(logits)
        if logits.mask is not self._no_mask:
            return super().log_probs(logits.full())
        session = self.projection
        if not self._head_log_probs:
            return super().log_probs(self.exact_logits(logits.hidden))
        return self._timed_run(session, [HEAD_LOG_PROBS], {"hidden": logits.hidden})[0]

    def timestamp_logits(self, hidden: np.ndarray, first: int) -> np.ndarray:
        """Exact FP32 logits (rows, vocab - first) of the tokens from `first` on (the
        timestamps), from their embedding rows, read once and kept (3 MB)."""
        if self._tail is None or self._tail[0] != first:
            self._tail = (first, np.ascontiguousarray(self._embeddings[np.arange(first, self.vocab_size)].T))
        # einsum, not `@`: a product this size wakes numpy's BLAS threads, which then spin on
        # the cores the next decoder step needs (its step 12 -> 23 ms, AMD EPYC, 2 threads).
        return np.einsum("ij,jk->ik", hidden, self._tail[1])

    def step_log_probs(self, input_ids: np.ndarray, self_kv: list, cross_kv: list) -> tuple[np.ndarray, list]:
        """One token per row: (log_softmax of its FP32 logits (rows, vocab), new self K/V).
        The decoder's bounded head scores no position (it would pick argmax candidates,
        which beam search does not use: ~3 ms of a 5-row step); the last position's hidden
        state goes through the FP32 head instead."""
        feeds = self._feeds(input_ids, self_kv, cross_kv)
        feeds["logit_mask"] = self._no_mask
        feeds[HEAD_POSITIONS] = self._no_positions
        states, *present = self._timed_run(self.decoder, self._hidden_fetch, feeds)
        hidden = np.ascontiguousarray(states[:, -1])
        return self.log_probs(BoundedLogits(hidden, None, self._no_mask, self)), present

    def _run(self, feeds: dict, mask: np.ndarray | None, positions: np.ndarray | None = None) -> tuple[BoundedLogits, list]:
        mask = self._no_mask if mask is None else mask
        feeds["logit_mask"] = mask
        feeds[HEAD_POSITIONS] = self._last if positions is None else positions
        fetch = self._fetch[self.fetch_bounds]
        heads = len(fetch) - len(self._present)
        outs = self._timed_run(self.decoder, fetch, feeds)
        candidates = np.divmod(np.flatnonzero(outs[1]), self.vocab_size)  # (rows, tokens), row-major as NonZero's
        return BoundedLogits(outs[0], candidates, mask, self, *outs[2:heads]), outs[heads:]

    def _feeds(self, input_ids: np.ndarray, self_kv: list, cross_kv: list) -> dict:
        """A forward's inputs for the tokens `input_ids` (B, n) after the cached K/V (the
        decoder's and the draft's, which share their input names)."""
        past = self_kv[0].shape[2]
        feeds = {"inputs_embeds": self._embeddings[input_ids], "position_ids": np.arange(past, past + input_ids.shape[1], dtype=np.int64)}
        feeds.update(zip(self._past, self_kv))
        feeds.update(zip(self._cross, cross_kv))
        return feeds

    def first_step(self, input_ids: np.ndarray, states: list[np.ndarray], mask: np.ndarray | None = None):
        """The prompt: (bounded logits, self K/V, cross K/V). mask: 0 or -inf per token,
        added to the logits (the logit filters)."""
        cross = list(states)  # K, V of each layer, as the encoder wrote them
        feeds = {"inputs_embeds": self._embeddings[input_ids], "position_ids": np.arange(input_ids.shape[1], dtype=np.int64)}
        feeds.update(dict.fromkeys(self._past, self._empty_kv(input_ids.shape[0])))
        feeds.update(zip(self._cross, cross))
        logits, present = self._run(feeds, mask)
        return logits, present, cross

    def step(self, input_ids: np.ndarray, self_kv: list, cross_kv: list, mask: np.ndarray | None = None):
        """One token per row: (bounded logits, new self K/V)."""
        return self._run(self._feeds(input_ids, self_kv, cross_kv), mask)

    def verify(self, input_ids: np.ndarray, self_kv: list, cross_kv: list, mask: np.ndarray | None = None):
        """n tokens per row (B, n) after the cached ones, every position scored: (bounded
        logits of B x n rows, row b * n + j after token j of row b; new self K/V with all n
        appended). Speculative decoding's check of a draft (core/speculative.py)."""
        return self._run(self._feeds(input_ids, self_kv, cross_kv), mask, np.arange(input_ids.shape[1], dtype=np.int64))

    def cut_cross(self, cross_kv: list[np.ndarray], frames: int) -> list[np.ndarray]:
        """The cross K/V of the first `frames` frames, contiguous (the frames axis: 2 of K, 3 of V)."""
        return [np.ascontiguousarray(a[..., :frames] if name.endswith("value") else a[:, :, :frames]) for name, a in zip(self._cross, cross_kv)]

    @property
    def draft(self) -> ort.InferenceSession:
        """The draft decoder (decoder_draft.onnx, 4-bit weights), loaded on first use (or
        waited for, when prefetch_draft started it; a load that failed raises here)."""
        if self._draft is None:
            loading, self._draft_loading = self._draft_loading, None
            self._draft = loading.result() if loading else load_session(self.folder / DECODER_DRAFT, self.config.options("draft"))
            self._draft_fetch = [DRAFT_OUTPUT, *self._present]
        return self._draft

    def prefetch_draft(self) -> None:
        """Start loading the draft in a thread of its own, so that its 0.13 s (AMD EPYC Zen 3)
        pass while the audio is decoded and encoded rather than before the first token; once."""
        if self._draft is None and self._draft_loading is None:
            self._draft_loading = _loader().submit(load_session, self.folder / DECODER_DRAFT, self.config.options("draft"))

    def draft_step(self, token: int, self_kv: list, cross_kv: list, mask: np.ndarray) -> tuple[int, list]:
        """The draft's guess after `token` (one row): (next token, its K/V with token's appended)."""
        session = self.draft
        feeds = self._feeds(np.array([[token]], dtype=np.int64), self_kv, cross_kv)
        feeds["logit_mask"] = mask
        outs = self._timed_run(session, self._draft_fetch, feeds)
        return int(outs[0][0, 0]), outs[1:]

    def check_alignment(self) -> None:
        """An mha folder built before word timestamps decodes as before, but has no alignment output."""
        if not set(ALIGNMENT_OUTPUTS) <= {o.name for o in self.decoder.get_outputs()}:
            raise ModelError(f"{self.folder / DECODER_MHA}: built before word timestamps, no alignment output "
                             "(rebuild with `whisper-ort optimize --force`)")

    def alignment(self, sequence: np.ndarray, cross: list) -> tuple[np.ndarray, np.ndarray]:
        """One pass over whole sequences (B, T) (prompt + generated tokens, empty past) on
        their windows' cross K/V: (the alignment heads' cross-attention probabilities
        (B, heads, T, frames), every position's final hidden state (B, T, d_model)). Only
        this pass fetches those outputs; the token steps never do."""
        self.check_alignment()
        feeds = {"inputs_embeds": self._embeddings[sequence], "position_ids": np.arange(sequence.shape[1], dtype=np.int64),
                 "logit_mask": self._no_mask, HEAD_POSITIONS: self._last}
        feeds.update(dict.fromkeys(self._past, self._empty_kv(sequence.shape[0])))
        feeds.update(zip(self._cross, cross))
        weights, hidden = self.decoder.run(list(ALIGNMENT_OUTPUTS), feeds)
        return weights, hidden


_LOADER: ThreadPoolExecutor | None = None


def _loader() -> ThreadPoolExecutor:
    """One thread for sessions loaded ahead of their first use (the draft)."""
    global _LOADER
    if _LOADER is None:
        _LOADER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper-ort-load")
    return _LOADER


def open_sessions(folder: str | Path, config: SessionConfig | None = None) -> WhisperSessions:
    """The sessions of the variant the folder holds."""
    folder = Path(folder)
    return (MhaSessions if variant_of(folder) == "mha" else ExportSessions)(folder, config or SessionConfig())


class BoundedLogits:
    """The mha decoder's last-position logits, as its bounded head gives them
    (decoder_graph._bounded_head): the hidden state the exact logits come from, and the
    (row, token) pairs that can be a row's argmax once the step's mask (the logit filters'
    -inf) is added. argmax() is exact: a row with one candidate has its argmax; several
    are scored exactly from their FP32 embedding rows (the projection is tied). `lower`
    and `upper` (B, vocab) are there when the sessions fetch them (fetch_bounds)."""

    def __init__(self, hidden: np.ndarray, candidates: np.ndarray, mask: np.ndarray, sessions: MhaSessions,
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

    def row_columns(self, row: int, ids) -> np.ndarray:
        """Exact logits (len(ids),) of some tokens in one row."""
        return self._sessions.exact_logits(self.hidden[row : row + 1], ids)[0]

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
            else:  # the mask lists them in increasing id, so ties go to the lowest, as np.argmax's
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

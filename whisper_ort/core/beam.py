"""Beam search: transformers' `generate(num_beams=...)` for Whisper, over the same sessions.

Every window's beams are rows of one decoder batch (windows x beams, window by window): the
cross K/V keep one row per window (the mha decoder attends a window's beams to one copy;
the export's decoder gets them repeated once per beam),
the self K/V are reordered each step by the rows the chosen candidates came from, and a
window whose search is over leaves the batch.

Scoring is transformers' `_beam_search` (generation/utils.py), the reference:
log_softmax of the full FP32 logits, then the logit filters (GreedyDecoder's own: they only
set -inf, and the timestamp rule compares log-probabilities, so logits or log-probs give
the same), running scores summed, the top 2 * beams candidates of each window; an end of
text (or the last position) among the first `beams` of them is a finished hypothesis,
scored sum / generated_length ** length_penalty (the end of text counted, the prompt not);
the best `beams` finished are kept. The search ends when `beams` hypotheses are finished
and the best running beam, divided by its length ** length_penalty, cannot beat the worst
of them (early_stopping=False, whisper-base's generation_config has none), or at the last
position. `patience` (openai/whisper's): the search ends instead once round(beams *
patience) hypotheses have finished; transformers has no such option.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from whisper_ort.core.decoders import WhisperSessions
from whisper_ort.core.decoding import (
    MAX_POSITIONS,
    DecodeResult,
    DecodingOptions,
    GreedyDecoder,
    _drop_rows,
    _softmax_column,
    compression_ratio,
)
from whisper_ort.core.tokenizer import WhisperTokenizer


def _top_k(cand: np.ndarray, k: int, stride: int = 64) -> np.ndarray:
    """The indices of each row's k largest values, unordered: np.argpartition's answer over
    only the values that can be among them. The k-th largest of every stride-th value is a
    lower bound on the row's k-th largest, so nothing at or above it is missed; it leaves a
    few hundred of a window's 5 x 51865 candidates (0.12 ms a step against 2.7 ms for
    argpartition over all of them, AMD EPYC)."""
    if cand.shape[1] < k * stride:
        return np.argpartition(cand, -k, axis=1)[:, -k:]
    floor = np.partition(cand[:, ::stride], -k, axis=1)[:, -k]
    rows = []
    for row, bound in zip(cand, floor):
        idx = np.flatnonzero(row >= bound)
        rows.append(idx[np.argpartition(row[idx], -k)[-k:]])
    return np.array(rows)


def check_beam_options(options: DecodingOptions) -> None:
    """A clear error for beam settings that cannot run."""
    size = options.beam_size
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1):
        raise ValueError(f"beam_size must be a whole number >= 1 (1: greedy), not {size!r}")
    if options.patience is not None and size is None:
        raise ValueError("patience needs beam_size (the finished hypotheses it counts are beam_size * patience)")
    if options.patience is not None and not options.patience > 0:
        raise ValueError(f"patience must be > 0, not {options.patience!r}")
    if options.patience is not None and round((size or 1) * options.patience) < 1:
        raise ValueError(f"beam_size * patience must round to at least 1 finished hypothesis ({size} * {options.patience})")


class _RowGather:
    """a[rows] for each of the self K/V arrays, written into buffers kept from step to step.
    A fresh array per step costs more than the copy: 1.4 ms for 12 arrays of (5, 8, 30, 64)
    against 0.17 ms into kept memory (AMD EPYC), ~8 % of a beam step. The arrays returned
    are views of the buffers, valid until the next call: the step reads them and returns
    new arrays of its own."""

    def __init__(self):
        self.buffers: list[np.ndarray] = []

    def __call__(self, arrays: list[np.ndarray], rows: np.ndarray) -> list[np.ndarray]:
        out = []
        for i, a in enumerate(arrays):
            shape = (len(rows), *a.shape[1:])
            size = int(np.prod(shape))
            if i == len(self.buffers):
                self.buffers.append(np.empty(0, dtype=a.dtype))
            if self.buffers[i].size < size:  # grown to twice the need: a few reallocations per search
                self.buffers[i] = np.empty(2 * size, dtype=a.dtype)
            # mode="clip": the rows are valid by construction, and "raise" copies through a temporary
            out.append(np.take(a, rows, axis=0, out=self.buffers[i][:size].reshape(shape), mode="clip"))
        return out


@dataclass
class Hypothesis:
    score: float  # sum_logprob / length ** length_penalty: what ranks finished hypotheses
    sum_logprob: float
    tokens: list[int]  # without the end of text
    ended: bool  # by an end of text (False: the last position)


class _Window:
    """One window's search: its finished hypotheses and whether it is over."""

    def __init__(self, beams: int, patience: float | None):
        self.beams = beams
        self.cap = round(beams * patience) if patience is not None else None
        self.finished: list[Hypothesis] = []
        self.done = False

    def add(self, new: list[Hypothesis]) -> None:
        if self.cap is None:  # transformers: the best `beams` of the old and the new
            self.finished = sorted(self.finished + new, key=lambda h: -h.score)[: self.beams]
        else:  # openai/whisper: first come, until the list is full
            for h in sorted(new, key=lambda h: -h.score):
                if len(self.finished) < self.cap:
                    self.finished.append(h)

    def check_done(self, best_running: float | None, length: int, length_penalty: float) -> None:
        if best_running is None:  # every candidate hit the last position
            self.done = True
        elif self.cap is not None:
            self.done = len(self.finished) >= self.cap
        elif len(self.finished) >= self.beams:  # transformers' early-stop heuristic (early_stopping=False)
            self.done = not best_running / length**length_penalty > min(h.score for h in self.finished)

    def best(self) -> Hypothesis:
        return max(self.finished, key=lambda h: h.score)


class BeamDecoder:
    """decode() as GreedyDecoder's, the best hypothesis of a beam search per window."""

    def __init__(self, sessions: WhisperSessions, tokenizer: WhisperTokenizer, options: DecodingOptions):
        check_beam_options(options)
        self.sessions = sessions
        self.tokenizer = tokenizer
        self.options = options
        self.beams = int(options.beam_size or 1)
        self.length_penalty = 1.0 if options.length_penalty is None else float(options.length_penalty)
        # The filters, language detection, and sampling above temperature 0 are greedy's.
        self.greedy = GreedyDecoder(sessions, tokenizer, options)
        self.filters = self.greedy.filters

    def detect_language(self, encoder_states) -> list[int]:
        return self.greedy.detect_language(encoder_states)

    def decode(self, encoder_states, prefix: list[int] | None = None, temperature: float = 0.0,
               rng: np.random.Generator | None = None, with_no_speech: bool = False, with_logprobs: bool = False,
               n_samples: list[int] | None = None) -> list[DecodeResult]:
        """One DecodeResult per window: the best finished hypothesis (sum_logprob and
        avg_logprob always set). Above temperature 0 it samples as GreedyDecoder does
        (openai/whisper searches beams only at temperature 0). n_samples: not used (greedy's
        speculative draft's)."""
        if temperature > 0:
            return self.greedy.decode(encoder_states, prefix, temperature, rng, with_no_speech, with_logprobs)
        tok, sessions = self.tokenizer, self.sessions
        n_windows = sessions.batch_of(encoder_states)
        t0 = time.perf_counter()
        no_speech = None
        if with_no_speech:
            sot_logits = self.greedy._sot_logits(encoder_states)
            no_speech = _softmax_column(sot_logits, tok.ids.no_speech)
        if self.greedy.language_id is not None:
            lang_ids = [self.greedy.language_id] * n_windows
        elif with_no_speech:
            lang_ids = [int(self.greedy.lang_ids[i]) for i in np.argmax(sot_logits[:, self.greedy.lang_ids], axis=-1)]
        else:
            lang_ids = self.detect_language(encoder_states)
        prompts = np.array([list(prefix or []) + tok.prompt(lang, self.options.task, self.options.timestamps) for lang in lang_ids], dtype=np.int64)
        max_new_tokens = min(self.options.max_new_tokens, MAX_POSITIONS - prompts.shape[1])
        logits, self_kv, cross_kv = sessions.first_step(prompts, encoder_states)
        logprobs = sessions.log_probs(logits)
        t_first = time.perf_counter() - t0

        windows = [_Window(self.beams, self.options.patience) for _ in range(n_windows)]
        live = np.arange(n_windows)  # windows still searching, in the order of their rows
        # The prompt ran once per window: one beam each with score 0 (transformers' other
        # beams start at -1e9 on the same logits, so every first candidate is beam 0's).
        per_window = 1
        tokens: list[list[int]] = [[] for _ in range(n_windows)]  # generated tokens per row
        scores = np.zeros(n_windows, dtype=np.float32)
        cross_owned = False  # cross_kv still the encoder's arrays, one row per window (the mha decoder reads them per window)
        reorder = _RowGather()
        steps = 0
        in_ort0 = sessions.t_step_run
        t1 = time.perf_counter()
        while True:
            for f in self.filters:
                f.apply(logprobs, tokens)
            src, next_ids, next_tokens, next_scores, kept = self._select(logprobs, scores, tokens, live, per_window, windows, max_new_tokens)
            if not kept:
                break
            if per_window == 1 and not sessions.cross_per_window:  # the export's decoder: each window's cross K/V once per beam
                cross_kv = [a[np.repeat(np.array(kept), self.beams)] for a in cross_kv]
                cross_owned = True
            elif len(kept) < len(live):  # windows left: the first drop copies the caller's cross K/V, later ones shrink ours in place
                per_row = 1 if sessions.cross_per_window else self.beams
                idx = np.concatenate([np.arange(i * per_row, (i + 1) * per_row) for i in kept])
                cross_kv = [_drop_rows(a, idx) for a in cross_kv] if cross_owned else [a[idx] for a in cross_kv]
                cross_owned = True
            live = live[kept]
            per_window = self.beams
            self_kv = reorder(self_kv, src)
            tokens, scores = next_tokens, next_scores
            logprobs, self_kv = sessions.step_log_probs(next_ids.reshape(-1, 1), self_kv, cross_kv)
            steps += 1
        t_loop = time.perf_counter() - t1
        t_in_ort = sessions.t_step_run - in_ort0

        results = []
        for w, window in enumerate(windows):
            best = window.best()
            flags = [] if best.ended else ["max_new_tokens"]
            threshold = self.options.compression_ratio_threshold
            if threshold is not None and compression_ratio(tok.decode(best.tokens)) > threshold:
                flags.append("repetition")
            results.append(DecodeResult(
                tokens=best.tokens, language=tok.id_to_lang[lang_ids[w]], flags=flags,
                t_decoder_first=t_first / n_windows, t_decoder_loop=t_loop / n_windows, t_loop_in_ort=t_in_ort / n_windows,
                n_steps=steps, sum_logprob=best.sum_logprob, avg_logprob=best.sum_logprob / (len(best.tokens) + 1),
                no_speech_prob=None if no_speech is None else float(no_speech[w]),
            ))
        return results

    def _select(self, logprobs, scores, tokens, live, per_window, windows, max_new_tokens):
        """One step of every live window: finished hypotheses recorded, the next beams chosen.
        Returns (source row of each next beam, its token, the rows' tokens, their scores,
        the indices into `live` of the windows still searching)."""
        vocab = logprobs.shape[1]
        k = 2 * self.beams
        cand = (logprobs + scores[:, None]).reshape(len(live), per_window * vocab)
        top = _top_k(cand, k)
        top_scores = np.take_along_axis(cand, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        eot = self.tokenizer.ids.eot
        src, ids, new_tokens, new_scores, kept = [], [], [], [], []
        for i, w in enumerate(live):
            window = windows[w]
            finished, running = [], []
            for rank, j in enumerate(order[i]):
                flat, score = int(top[i, j]), float(top_scores[i, j])
                row, tok_id = i * per_window + flat // vocab, flat % vocab
                length = len(tokens[row]) + 1  # generated tokens, this one (an end of text too) included
                if tok_id == eot or length >= max_new_tokens:
                    if rank < self.beams:  # transformers: only the top `beams` may finish
                        seq = tokens[row] if tok_id == eot else tokens[row] + [tok_id]
                        finished.append(Hypothesis(score / length**self.length_penalty, score, seq, tok_id == eot))
                elif len(running) < self.beams:
                    running.append((score, row, tok_id))
            window.add(finished)
            length = len(tokens[i * per_window]) + 1  # the running beams' length after this step
            window.check_done(running[0][0] if running else None, length, self.length_penalty)
            if window.done:
                continue
            kept.append(i)
            for score, row, tok_id in running:
                src.append(row)
                ids.append(tok_id)
                new_tokens.append(tokens[row] + [tok_id])
                new_scores.append(score)
        return (np.array(src, dtype=np.int64), np.array(ids, dtype=np.int64), new_tokens,
                np.array(new_scores, dtype=np.float32), kept)

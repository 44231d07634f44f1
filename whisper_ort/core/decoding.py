"""Greedy decoding: the per-call options, logit rules, language detection and the loop over cached K/V.

Shaped after openai/whisper's decoding.py: a frozen DecodingOptions, small logit
filters, and one loop that runs the steps. The rules reproduce transformers'
`generate` for Whisper (SuppressTokens, SuppressTokensAtBegin, WhisperTimeStamp), so the
tokens are the reference's tokens.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from whisper_ort.core.decoders import BoundedLogits, WhisperSessions, log_softmax
from whisper_ort.core.tokenizer import WhisperTokenizer

NEG_INF = np.float32(-np.inf)
MAX_POSITIONS = 448  # the decoder's positions: prompt + generated tokens


def _drop_rows(a: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """a[keep] for ascending row indices, in a's own memory: each kept row moves forward (it
    never overwrites a row still to be read), and the first len(keep) rows are returned as a
    contiguous view."""
    for j, src in enumerate(keep):
        if j != src:
            a[j] = a[src]
    return a[: len(keep)]


def _softmax_column(logits: np.ndarray, column: int) -> np.ndarray:
    """softmax(logits)[:, column], in float64."""
    x = logits.astype(np.float64)
    top = x.max(axis=-1, keepdims=True)
    return np.exp(x[:, column] - top[:, 0]) / np.exp(x - top).sum(axis=-1)


def _sample(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """One token per row from softmax(logits / temperature) (openai/whisper's categorical)."""
    x = logits.astype(np.float64) / temperature
    x -= x.max(axis=-1, keepdims=True)
    p = np.exp(x)
    p /= p.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(p.shape[-1], p=row) for row in p], dtype=np.int64)


@dataclass(frozen=True)
class DecodingOptions:
    language: str | None = "en"  # None: detect from the first step
    task: str = "transcribe"
    timestamps: bool = False
    max_new_tokens: int = 448  # the decoder's positions less the prompt's: no dense window is cut short
    max_initial_timestamp_index: int | None = 50
    # Repetition guard: cut a loop once its last n-gram (n <= 8 tokens) has repeated this
    # many times back to back; 0 disables the cut (the compression-ratio flag stays).
    max_repeats: int = 12
    compression_ratio_threshold: float | None = 2.4  # above: a loop (flagged; sequential decoding falls back)
    # Every FP32 logit each step, even where the mha decoder's bounded logits give the
    # argmax exactly from a few (the lever's "off"; timestamp rules always need them all).
    full_logits: bool = False
    # Audio over 30 s (core/longform.py): how it is cut into windows, and how many windows
    # go through the encoder and the decoder at once (the text is the same at any size).
    chunking: str = "silence"  # measured best WER at the best speed (README, "Long audio")
    batch_size: int = 1
    # Sequential long-form decoding (chunking="sequential", core/sequential.py), openai/whisper's
    # transcribe(): temperatures tried in turn while a window fails the thresholds (a
    # compression ratio above, an average log-probability below); a window whose no-speech
    # probability is above no_speech_threshold while its log-probability is below the
    # threshold is silence and gives no text. None turns each check off.
    temperature: float | tuple[float, ...] = 0.0
    logprob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    condition_on_previous_text: bool = False
    initial_prompt: str | None = None
    seed: int = 0  # of the sampling at temperatures above 0
    # Sampling at a temperature above 0: the best of this many samples (openai/whisper's best_of).
    best_of: int | None = None
    # Speculative greedy decoding (core/speculative.py): tokens the 4-bit draft guesses per
    # FP32 forward (4: the fastest measured); 0 turns it off. Greedy's tokens either way.
    draft_tokens: int = 4
    # Beam search (core/beam.py) when beam_size is set: transformers' `generate(num_beams=...)`.
    # patience: openai/whisper's (beam_size * patience finished hypotheses end the search);
    # length_penalty: None = the sum of log-probabilities divided by the length.
    beam_size: int | None = None
    patience: float | None = None
    length_penalty: float | None = None
    # Tokens never produced: -1 stands for the model's own list (generation_config.json
    # suppress_tokens); suppress_blank: no blank or end of text as the first token.
    suppress_tokens: tuple[int, ...] = (-1,)
    suppress_blank: bool = True
    # Word-level timestamps (core/timing.py): cross-attention of the alignment heads, DTW;
    # punctuation merged into the neighbouring word as openai/whisper's timing.py does.
    word_timestamps: bool = False
    prepend_punctuations: str = "\"'“¿([{-"
    append_punctuations: str = "\"'.。,，!！?？:：”)]}、"


@dataclass
class DecodeResult:
    tokens: list[int]
    language: str
    flags: list[str] = field(default_factory=list)
    t_decoder_first: float = 0.0
    t_decoder_loop: float = 0.0
    t_loop_in_ort: float = 0.0  # of t_decoder_loop, the time inside session.run
    n_steps: int = 0
    sum_logprob: float | None = None  # log-probabilities of the chosen tokens, end of text included (full logits only)
    avg_logprob: float | None = None  # sum_logprob / (tokens + 1)
    no_speech_prob: float | None = None  # softmax at <|startoftranscript|> of <|nospeech|> (with_no_speech)
    # word_timestamps: per run of text tokens (one per timestamp segment), its words as
    # (text, start, end, probability), seconds from the window's start (core/timing.py)
    word_runs: list[list[tuple[str, float, float, float]]] | None = None
    language_probs: dict[str, float] | None = None  # language detected: softmax over the language tokens
    temperature: float = 0.0  # of the sampling; 0: greedy
    speculation: object | None = None  # core/speculative.Speculation when the draft ran


# ---------------------------------------------------------------- logit filters


class SuppressTokens:
    """Tokens that may never be produced: one mask, built once."""

    def __init__(self, token_ids, vocab_size: int):
        self.ids = np.array(sorted(set(token_ids)), dtype=np.int64)
        self.ids = self.ids[self.ids < vocab_size]

    def apply(self, logits: np.ndarray, tokens: list[list[int]]) -> None:
        logits[:, self.ids] = NEG_INF


class SuppressAtBegin:
    """Blank and end-of-text are not allowed as the first generated token."""

    def __init__(self, token_ids):
        self.ids = np.array(sorted(set(token_ids)), dtype=np.int64)

    def apply(self, logits: np.ndarray, tokens: list[list[int]]) -> None:
        for row, seq in enumerate(tokens):
            if not seq:
                logits[row, self.ids] = NEG_INF


def _logsumexp(values: np.ndarray) -> float:
    """log(sum(exp(values))) of a 1-D array; -inf when every value is -inf."""
    top = values.max()
    return top + np.log(np.exp(values - top).sum()) if np.isfinite(top) else -np.inf


class TimestampRules:
    """transformers' WhisperTimeStampLogitsProcessor (openai/whisper's ApplyTimestampRules)."""

    def __init__(self, tokenizer: WhisperTokenizer, max_initial_timestamp_index: int | None):
        self.no_timestamps = tokenizer.ids.no_timestamps
        self.begin = tokenizer.ids.timestamp_begin
        self.eot = tokenizer.ids.eot
        self.max_initial = max_initial_timestamp_index

    def apply(self, logits: np.ndarray, tokens: list[list[int]]) -> None:
        self.static(logits, tokens)
        for row in range(len(tokens)):
            # If all timestamps together are likelier than any single text token, take a timestamp.
            if self.timestamps_win(logits[row, self.begin :], float(logits[row, : self.begin].max())):
                logits[row, : self.begin] = NEG_INF

    @staticmethod
    def timestamps_win(ts_logits: np.ndarray, text_best: float) -> bool:
        """The timestamps' summed probability beats the best text token's: their logits'
        log-sum-exp exceeds its logit (the log-softmax normalizer is on both sides)."""
        return _logsumexp(ts_logits.astype(np.float64)) > text_best

    def static(self, logits: np.ndarray, tokens: list[list[int]]) -> None:
        """The rules that depend on the tokens so far only (not on this step's logits)."""
        logits[:, self.no_timestamps] = NEG_INF
        for row, seq in enumerate(tokens):
            last_ts = len(seq) >= 1 and seq[-1] >= self.begin
            penultimate_ts = len(seq) < 2 or seq[-2] >= self.begin
            if last_ts:
                if penultimate_ts:
                    logits[row, self.begin :] = NEG_INF
                else:
                    logits[row, : self.eot] = NEG_INF
            stamps = [t for t in seq if t >= self.begin]
            if stamps:
                last = stamps[-1] if (last_ts and not penultimate_ts) else stamps[-1] + 1
                logits[row, self.begin : last] = NEG_INF
            if not seq:
                logits[row, : self.begin] = NEG_INF
                if self.max_initial is not None:
                    logits[row, self.begin + self.max_initial + 1 :] = NEG_INF

    def choose(self, logits: BoundedLogits, ts_logits: np.ndarray, text_open: np.ndarray) -> np.ndarray:
        """apply() then argmax, from bounded logits: the step ran with the static rules'
        mask and every timestamp -inf, so its candidates are the text argmax's; ts_logits
        (rows, timestamps): the timestamps' exact logits, static mask added; text_open: rows
        with a text token allowed. The timestamps win when their log-sum-exp exceeds the best
        text logit (apply's comparison: the normalizer is on both sides), and then their
        argmax; else the text argmax (no single timestamp can beat it then)."""
        rows, candidates = logits.candidates
        out = np.empty(len(ts_logits), dtype=np.int64)
        for row, ts in enumerate(ts_logits):
            text_id, text_best = -1, -np.inf
            if text_open[row]:
                ids = candidates[rows == row]
                if len(ids) == 0:  # NaN in the head: every text token the mask allows
                    ids = np.flatnonzero(np.isfinite(logits.mask[min(row, len(logits.mask) - 1), : self.begin]))
                scores = logits.row_columns(row, ids)  # ids ascending: ties go to the lowest, as np.argmax's
                text_id, text_best = int(ids[int(np.argmax(scores))]), float(scores.max())
            out[row] = self.begin + int(np.argmax(ts)) if self.timestamps_win(ts, text_best) else text_id
        return out


def suppress_token_ids(requested, model_list, vocab_size: int) -> list[int]:
    """The ids DecodingOptions.suppress_tokens stands for: -1 = the model's own list
    (generation_config.json), other ids added to it; empty = suppress nothing."""
    ids = set()
    for t in requested:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise ValueError(f"suppress_tokens: {t!r} is not a token id")
        if t == -1:
            ids.update(int(x) for x in model_list)
        elif 0 <= t < vocab_size:
            ids.add(int(t))
        else:
            raise ValueError(f"suppress_tokens: {t} is not a token id (-1, or 0..{vocab_size - 1})")
    return sorted(ids)


# ---------------------------------------------------------------- repetition


def compression_ratio(text: str) -> float:
    """openai/whisper's gzip ratio: loops compress well, speech does not (> 2.4 is a loop)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def repeated_tail(seq: list[int], max_repeats: int, max_n: int = 8) -> int:
    """Length of the looping tail to cut when an n-gram repeats max_repeats times at the end (0: none)."""
    for n in range(1, max_n + 1):
        span = n * max_repeats
        if len(seq) < max(span, n + 1):  # max_repeats=1: one copy is no repeat
            break
        if seq[-1] != seq[-1 - n]:  # runs every token: reject the common case first
            continue
        tail = seq[-n:]
        if all(seq[-(k + 1) * n : len(seq) - k * n] == tail for k in range(1, max_repeats)):
            return span - n  # keep one copy of the repeated n-gram
    return 0


# ---------------------------------------------------------------- the loop


class GreedyDecoder:
    """Runs the prompt and the token loop for a batch of encoder states."""

    def __init__(self, sessions: WhisperSessions, tokenizer: WhisperTokenizer, options: DecodingOptions):
        gen = sessions.configs["generation_config.json"]
        k = options.draft_tokens
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"draft_tokens must be a whole number >= 0 (0: no speculative decoding), not {k!r}")
        self.sessions = sessions
        self.tokenizer = tokenizer
        self.options = options
        self.language_id = tokenizer.language_id(options.language) if options.language else None
        self.filters = []
        suppress = suppress_token_ids(options.suppress_tokens, gen["suppress_tokens"], sessions.vocab_size)
        if suppress:
            self.filters.append(SuppressTokens(suppress, sessions.vocab_size))
        if options.suppress_blank:
            self.filters.append(SuppressAtBegin(gen["begin_suppress_tokens"]))
        if options.timestamps:
            self.filters.append(TimestampRules(tokenizer, options.max_initial_timestamp_index))
        lang_ids = np.array(sorted(tokenizer.ids.lang_to_id.values()), dtype=np.int64)
        self.lang_ids = lang_ids
        # The filters other than the timestamp rules only set -inf, the same before the first
        # token and after it: the mha decoder takes them as a mask and returns the few tokens
        # that can be the argmax. The timestamp rules change with the tokens and weigh all
        # timestamps' probabilities: the mha decoder takes their static part as a mask per
        # step, and TimestampRules.choose() weighs the timestamps' exact logits against the
        # best text token's. Every logit is needed only for log-probabilities (sampling,
        # temperature fallback), by the export variant, and with options.full_logits.
        self.timestamp_rules = next((f for f in self.filters if isinstance(f, TimestampRules)), None)
        self.full_logits = options.full_logits or self.timestamp_rules is not None
        self.masks = None if self.full_logits else (self._mask([]), self._mask([tokenizer.ids.eot]))
        self.bounded_timestamps = self.timestamp_rules is not None and not options.full_logits and hasattr(sessions, "timestamp_logits")

    def _logits_kind(self, sampling: bool, with_logprobs: bool) -> tuple[bool, bool]:
        """(timestamps on the bounded logits, every logit needed) for a decode()."""
        bounded_ts = self.bounded_timestamps and not (sampling or with_logprobs)
        return bounded_ts, (self.full_logits or sampling or with_logprobs) and not bounded_ts

    def speculates(self, batch: int = 1, temperature: float = 0.0, with_logprobs: bool = False) -> bool:
        """Whether decode() with these arguments runs the speculative loop (and needs the draft)."""
        return self._speculates(batch, self._logits_kind(temperature > 0, with_logprobs)[1])

    def _speculates(self, batch: int, full_logits: bool) -> bool:
        """Speculative decoding where it is exact and applies: greedy on the bounded head,
        one row, a decoder with a draft and a check of several positions."""
        return bool(self.options.draft_tokens) and batch == 1 and not full_logits and hasattr(self.sessions, "draft_step")

    def _timestamp_masks(self, rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For rows that have produced `rows` so far: (the step's mask (rows, vocab): the
        filters' static -inf and every timestamp -inf, so the bounded head's candidates are
        the text argmax's; the timestamps' own mask (rows, timestamps); whether each row has
        a text token left)."""
        begin = self.timestamp_rules.begin
        mask = np.zeros((len(rows), self.sessions.vocab_size), dtype=np.float32)
        for f in self.filters:
            (f.static if f is self.timestamp_rules else f.apply)(mask, rows)
        ts_mask = mask[:, begin:].copy()
        mask[:, begin:] = NEG_INF
        return mask, ts_mask, np.isfinite(mask[:, :begin]).any(axis=1)

    def _timestamp_choice(self, logits: BoundedLogits, ts_mask: np.ndarray, text_open: np.ndarray) -> np.ndarray:
        """Each row's next token under the timestamp rules, from bounded logits a step
        computed with _timestamp_masks' mask (TimestampRules.choose)."""
        rules = self.timestamp_rules
        return rules.choose(logits, self.sessions.timestamp_logits(logits.hidden, rules.begin) + ts_mask, text_open)

    def _timestamp_verifier(self):
        """The speculative loop's check under the timestamp rules: (the draft's mask after
        some tokens: the static rules, timestamps allowed; the verifier's (step mask, choice)
        for the positions after each of several token lists)."""

        def draft_mask(tokens: list[int]) -> np.ndarray:
            mask, ts_mask, _ = self._timestamp_masks([tokens])
            mask[:, self.timestamp_rules.begin :] = ts_mask
            return mask

        def check(rows: list[list[int]]):
            mask, ts_mask, text_open = self._timestamp_masks(rows)
            return mask, lambda logits: self._timestamp_choice(logits, ts_mask, text_open)

        return draft_mask, check

    def _mask(self, tokens: list[int]) -> np.ndarray:
        """The filters' -inf for a row that has produced `tokens` so far, as (1, vocab) 0 / -inf."""
        mask = np.zeros((1, self.sessions.vocab_size), dtype=np.float32)
        for f in self.filters:
            f.apply(mask, [tokens])
        return mask

    def _sot_logits(self, encoder_states) -> np.ndarray:
        """Every logit at <|startoftranscript|> alone: language detection and no-speech."""
        sot = np.full((self.sessions.batch_of(encoder_states), 1), self.tokenizer.ids.sot, dtype=np.int64)
        logits, _, _ = self.sessions.first_step(sot, encoder_states)
        return logits.full() if isinstance(logits, BoundedLogits) else logits

    def detect_language(self, encoder_states: np.ndarray) -> list[int]:
        """One step on <|startoftranscript|>; the likeliest language token per row."""
        return self.language_scores(encoder_states)[0]

    def language_scores(self, encoder_states, sot_logits: np.ndarray | None = None) -> tuple[list[int], list[dict[str, float]]]:
        """The likeliest language token per row, and each row's softmax over the language
        tokens at <|startoftranscript|> (openai/whisper's detect_language), code -> probability."""
        if sot_logits is None:
            sot = np.full((self.sessions.batch_of(encoder_states), 1), self.tokenizer.ids.sot, dtype=np.int64)
            logits, _, _ = self.sessions.first_step(sot, encoder_states)
            scores = logits.columns(self.lang_ids) if isinstance(logits, BoundedLogits) else logits[:, self.lang_ids]
        else:
            scores = sot_logits[:, self.lang_ids]
        probs = np.exp(log_softmax(np.asarray(scores, dtype=np.float64)))
        codes = [self.tokenizer.id_to_lang[int(t)] for t in self.lang_ids]
        return [int(self.lang_ids[i]) for i in np.argmax(scores, axis=-1)], [dict(zip(codes, map(float, row))) for row in probs]

    def decode(self, encoder_states: np.ndarray, prefix: list[int] | None = None, temperature: float = 0.0,
               rng: np.random.Generator | None = None, with_no_speech: bool = False, with_logprobs: bool = False,
               n_samples: list[int] | None = None) -> list[DecodeResult]:
        """Decode a batch of windows. prefix: tokens before the prompt, the same for every row
        (<|startofprev|> and earlier text); temperature > 0 samples instead of taking the
        argmax; with_no_speech: each row's no-speech probability (one more prompt step);
        with_logprobs: the chosen tokens' log-probabilities (every logit each step);
        n_samples: each window's audio before its padding, for the speculative draft, which
        reads the cross K/V of those frames only (the tokens do not depend on it)."""
        batch = self.sessions.batch_of(encoder_states)
        t0 = time.perf_counter()
        no_speech = None
        if with_no_speech:
            sot_logits = self._sot_logits(encoder_states)
            no_speech = _softmax_column(sot_logits, self.tokenizer.ids.no_speech)
        lang_probs = [None] * batch
        if self.language_id is not None:
            lang_ids = [self.language_id] * batch
        else:
            lang_ids, lang_probs = self.language_scores(encoder_states, sot_logits if with_no_speech else None)
        prompts = np.array([list(prefix or []) + self.tokenizer.prompt(lang, self.options.task, self.options.timestamps) for lang in lang_ids], dtype=np.int64)
        max_new_tokens = min(self.options.max_new_tokens, MAX_POSITIONS - prompts.shape[1])
        sampling = temperature > 0
        bounded_ts, full_logits = self._logits_kind(sampling, with_logprobs)
        first_mask, later_mask = (None, None) if full_logits or bounded_ts else self.masks
        if bounded_ts:
            first_mask, ts_mask, text_open = self._timestamp_masks([[] for _ in range(batch)])
        logits, self_kv, cross_kv = self.sessions.first_step(prompts, encoder_states, mask=first_mask)
        t_first = time.perf_counter() - t0

        eot = self.tokenizer.ids.eot
        tokens: list[list[int]] = [[] for _ in range(batch)]
        flags: list[list[str]] = [[] for _ in range(batch)]
        sum_logprob = np.zeros(batch) if with_logprobs else None
        active = np.arange(batch)  # rows still decoding, in the order of the K/V rows
        cross_owned = False  # cross_kv still the caller's arrays (see the drop below)
        steps = 0
        in_ort0 = self.sessions.t_step_run
        t1 = time.perf_counter()
        speculating = self._speculates(batch, full_logits)
        if speculating:  # greedy's tokens, several a forward (core/speculative.py)
            from whisper_ort.core.speculative import draft_cross, speculative_greedy  # it imports this module
            first = self._timestamp_choice(logits, ts_mask, text_open) if bounded_ts else logits.argmax()
            tokens[0], flags[0], speculation = speculative_greedy(
                self.sessions, int(first[0]), self_kv, cross_kv, draft_cross(self.sessions, cross_kv, n_samples), later_mask,
                eot, max_new_tokens, self.options.max_repeats, self.options.draft_tokens,
                self._timestamp_verifier() if bounded_ts else None)
            steps = speculation.forwards
        while not speculating:
            if bounded_ts:
                next_ids = self._timestamp_choice(logits, ts_mask, text_open)
            elif isinstance(logits, BoundedLogits) and not full_logits:
                next_ids = logits.argmax()  # the filters' mask went in with the step
            else:
                if isinstance(logits, BoundedLogits):
                    logits = logits.full()
                live = [tokens[r] for r in active]
                for f in self.filters:
                    f.apply(logits, live)
                if sampling:
                    next_ids = _sample(logits, temperature, rng)
                else:
                    # argmax over the last position only; logits are already (rows, vocab)
                    next_ids = np.argmax(logits, axis=-1)
                if sum_logprob is not None:
                    sum_logprob[active] += log_softmax(logits)[np.arange(len(active)), next_ids]
            keep = []
            for i, row in enumerate(active):
                tok = int(next_ids[i])
                if tok == eot:
                    continue
                tokens[row].append(tok)
                if len(tokens[row]) >= max_new_tokens:
                    flags[row].append("max_new_tokens")
                    continue
                if self.options.max_repeats and (cut := repeated_tail(tokens[row], self.options.max_repeats)):
                    del tokens[row][-cut:]
                    flags[row].append("repetition_cut")
                    continue
                keep.append(i)
            if not keep:
                break
            if len(keep) < len(active):
                # Rows that finished drop out of the batch. The cross K/V are the caller's (the
                # encoder's output) until the first drop copies them; after that they, like the
                # self K/V (the step's outputs), are ours and shrink in place: a fresh copy
                # of the live rows (37 MB each) page-faults every time, ~9 ms a row.
                idx = np.array(keep)
                self_kv = [_drop_rows(a, idx) for a in self_kv]
                cross_kv = [_drop_rows(a, idx) for a in cross_kv] if cross_owned else [a[idx] for a in cross_kv]
                cross_owned = True
                next_ids = next_ids[idx]
                active = active[idx]
            mask = later_mask
            if bounded_ts:
                mask, ts_mask, text_open = self._timestamp_masks([tokens[r] for r in active])
            logits, self_kv = self.sessions.step(next_ids.reshape(-1, 1).astype(np.int64), self_kv, cross_kv, mask=mask)
            steps += 1
        t_loop = time.perf_counter() - t1
        t_in_ort = self.sessions.t_step_run - in_ort0

        results = []
        for row in range(batch):
            text = self.tokenizer.decode(tokens[row])
            threshold = self.options.compression_ratio_threshold
            if threshold is not None and compression_ratio(text) > threshold:
                flags[row].append("repetition")
            results.append(
                DecodeResult(
                    tokens=tokens[row],
                    language=self.tokenizer.id_to_lang[lang_ids[row]],
                    flags=flags[row],
                    t_decoder_first=t_first / batch,
                    t_decoder_loop=t_loop / batch,
                    t_loop_in_ort=t_in_ort / batch,
                    n_steps=steps,
                    sum_logprob=None if sum_logprob is None else float(sum_logprob[row]),
                    avg_logprob=None if sum_logprob is None else float(sum_logprob[row] / (len(tokens[row]) + 1)),
                    no_speech_prob=None if no_speech is None else float(no_speech[row]),
                    language_probs=lang_probs[row],
                    temperature=float(temperature),
                    speculation=speculation if speculating else None,
                )
            )
        return results

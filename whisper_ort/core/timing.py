"""Word-level timestamps: the alignment heads' cross-attention, a median filter, DTW.

transformers' way, the reference (WhisperGenerationMixin._extract_token_timestamps and the
tokenizer's _collate_word_timestamps), which follows openai/whisper's timing.py:

- one decoder pass over the window's whole sequence (prompt + generated tokens) returns the
  alignment heads' attention probabilities (MhaSessions.alignment); the rows of the
  generated tokens are kept, cut to the frames that hold audio (num_frames // 2);
- each head is normalised over the tokens (mean, population std) per frame, median-filtered
  along time (width 7), the heads averaged; DTW on its negative gives a path, and each
  row's first frame on it is that token's time;
- a text token spans (time of the token before it, its own time); tokens join into words
  at spaces, punctuation merged into the neighbouring word; a word's probability is the
  mean of its tokens' (openai/whisper's), each the softmax over the text tokens at the
  position that predicts it.
"""

from __future__ import annotations

import numpy as np

from whisper_ort.core.tokenizer import TIME_PRECISION

MEDIAN_FILTER_WIDTH = 7  # config.json's median_filter_width, openai/whisper's medfilt_width
NO_SPACE_LANGUAGES = {"zh", "ja", "th", "lo", "my", "yue"}  # words split at unicode boundaries
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def median_filter(x: np.ndarray, width: int = MEDIAN_FILTER_WIDTH) -> np.ndarray:
    """Median over a sliding window along the last axis, edges reflected (transformers'
    _median_filter); unchanged when the axis is not longer than width // 2."""
    if width <= 0 or width % 2 != 1:
        raise ValueError(f"median filter width must be an odd positive number, not {width}")
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)
    return np.partition(windows, pad, axis=-1)[..., pad]


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cheapest monotonic path through cost (tokens, frames): (token index, frame index) per
    step. The recurrence and tie rules of openai/whisper's dtw_cpu, computed a row at a time:
    along a row acc[j] = cost[j] + min(a[j], acc[j-1]) with a the better of the two cells
    above (none when they tie: the left cell is taken then), a min-plus scan:
    acc - cumsum(cost) is a running minimum."""
    n, m = cost.shape
    cost = cost.astype(np.float64)
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    trace = np.full((n + 1, m + 1), 2, dtype=np.int8)
    for i in range(1, n + 1):
        diag, up = acc[i - 1, :-1], acc[i - 1, 1:]
        row = cost[i - 1]
        before = np.concatenate(([0.0], np.cumsum(row)[:-1]))  # sum of row[:j]
        # The cell above wins only when strictly better than the other: equal, the left one does.
        above = np.where(diag == up, np.inf, np.minimum(diag, up))
        best = np.minimum.accumulate(above - before)
        acc[i, 1:] = best + before + row
        left = acc[i, :-1]
        t = np.where((diag < up) & (diag < left), 0, np.where((up < diag) & (up < left), 1, 2))
        trace[i, 1:] = t
    trace[0, :] = 2
    trace[:, 0] = 1
    i, j = n, m
    text, time = [], []
    while i > 0 or j > 0:
        text.append(i - 1)
        time.append(j - 1)
        step = trace[i, j]
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
    return np.array(text[::-1]), np.array(time[::-1])


def token_times(weights: np.ndarray, num_frames: int, width: int = MEDIAN_FILTER_WIDTH) -> np.ndarray:
    """Seconds per token row of the alignment heads' attention (heads, tokens, 1500), the
    audio being num_frames mel frames: each row's first frame on the DTW path."""
    if weights.shape[1] == 0:
        return np.zeros(0)
    w = weights[..., : max(1, num_frames // 2)].astype(np.float32)
    std = w.std(axis=-2, keepdims=True)
    w = (w - w.mean(axis=-2, keepdims=True)) / np.where(std > 0, std, 1.0)  # one token: std 0
    matrix = median_filter(w, width).mean(axis=0)
    text_idx, time_idx = dtw(-matrix.astype(np.float64))
    jumps = np.diff(text_idx, prepend=-1).astype(bool)
    return time_idx[jumps] * TIME_PRECISION


def split_words(tokenizer, tokens: list[int], language: str, prepend: str, append: str) -> list[tuple[str, list[int]]]:
    """(word, indices into tokens) for a run of text tokens: transformers' _combine_tokens_into_words
    (at spaces, or at unicode boundaries for languages written without them; then
    punctuation merged into the next word (prepend) or the previous one (append))."""
    pieces = _split_on_unicode(tokenizer, tokens)
    if language not in NO_SPACE_LANGUAGES:
        words: list[list] = []
        for text, idx in pieces:
            if text.startswith(" ") or text.strip() in PUNCTUATION or not words:
                words.append([text, list(idx)])
            else:
                words[-1][0] += text
                words[-1][1].extend(idx)
        pieces = [(w, i) for w, i in words]
    return _merge_punctuations([[w, list(i)] for w, i in pieces], prepend, append)


def _split_on_unicode(tokenizer, tokens: list[int]) -> list[tuple[str, list[int]]]:
    """Tokens grouped where their bytes decode to whole characters."""
    full = tokenizer.decode(tokens)
    out, current, offset = [], [], 0
    for k in range(len(tokens)):
        current.append(k)
        text = tokenizer.decode([tokens[i] for i in current])
        if "\ufffd" not in text or full[offset + text.index("\ufffd")] == "\ufffd":
            out.append((text, current))
            current, offset = [], offset + len(text)
    return out


def _merge_punctuations(words: list[list], prepend: str, append: str) -> list[tuple[str, list[int]]]:
    i, j = len(words) - 2, len(words) - 1
    while i >= 0:
        if words[i][0].startswith(" ") and words[i][0].strip() in prepend:
            words[j] = [words[i][0] + words[j][0], words[i][1] + words[j][1]]
            words[i] = ["", []]
        else:
            j = i
        i -= 1
    i, j = 0, 1
    while j < len(words):
        if not words[i][0].endswith(" ") and words[j][0] in append:
            words[i] = [words[i][0] + words[j][0], words[i][1] + words[j][1]]
            words[j] = ["", []]
        else:
            i = j
        j += 1
    return [(w, idx) for w, idx in words if w]


def text_runs(tokens: list[int], eot: int, timestamp_begin: int) -> list[list[int]]:
    """Indices of each run of text tokens between timestamp tokens: one run per segment of
    pipeline.timestamp_segments, in order."""
    runs, run = [], []
    for k, tok in enumerate(tokens):
        if tok >= timestamp_begin:
            if run:
                runs.append(run)
            run = []
        elif tok < eot:
            run.append(k)
    if run:
        runs.append(run)
    return runs


def window_words(tokenizer, tokens: list[int], times: np.ndarray, probs: np.ndarray, language: str,
                 prepend: str, append: str) -> list[list[tuple[str, float, float, float]]]:
    """Per run of text tokens (one per segment), its words (text, start, end, probability)
    in seconds from the window's start. times, probs: one per token of `tokens`."""
    ids = tokenizer.ids
    starts = np.round(np.concatenate(([0.0], times[:-1])), 2)
    ends = np.round(times, 2)
    out = []
    for run in text_runs(tokens, ids.eot, ids.timestamp_begin):
        words = split_words(tokenizer, [tokens[k] for k in run], language, prepend, append)
        out.append([(text, float(starts[run[idx[0]]]), float(ends[run[idx[-1]]]), float(np.mean(probs[[run[k] for k in idx]])))
                    for text, idx in words])
    return out


def text_token_probs(logits: np.ndarray, tokens: list[int], eot: int) -> np.ndarray:
    """Probability of each token from the logits (tokens, vocab) of the positions that
    predict them, softmax over the text tokens only (openai/whisper's); NaN for the others."""
    x = logits[:, :eot].astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    p = np.exp(x)
    p /= p.sum(axis=-1, keepdims=True)
    ids = np.asarray(tokens, dtype=np.int64)
    text = ids < eot
    out = np.full(len(ids), np.nan)
    out[text] = p[np.flatnonzero(text), ids[text]]
    return out


def audio_frames(n_samples: int, hop: int = 160, max_frames: int = 3000) -> int:
    """Mel frames that hold audio (transformers: the feature extractor's attention mask)."""
    return min(max_frames, -(-n_samples // hop))


def words_of_window(sessions, tokenizer, prompt: list[int], tokens: list[int], cross: list[np.ndarray],
                    num_frames: int, language: str, prepend: str, append: str):
    """One window's words per run of text tokens (window_words), from one decoder pass over
    prompt + tokens on the window's cross K/V (a batch row of one); num_frames: its mel
    frames that hold audio."""
    if not tokens:
        return []
    sequence = np.array([list(prompt) + list(tokens)], dtype=np.int64)
    weights, hidden = sessions.alignment(sequence, cross)
    first = len(prompt)
    times = token_times(weights[0][:, first:], num_frames)
    # Position first - 1 + k predicts token k.
    logits = sessions.exact_logits(np.ascontiguousarray(hidden[0, first - 1 : first - 1 + len(tokens)]))
    probs = text_token_probs(logits, tokens, tokenizer.ids.eot)
    return window_words(tokenizer, tokens, times, probs, language, prepend, append)

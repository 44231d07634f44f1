"""Audio longer than 30 s: windows with stride, stitched by longest common token sequence.

The transformers ASR pipeline's defaults for `chunk_length_s=30`: 30 s windows, a
stride of 5 s on each side (chunk_length_s / 6), so windows start every 20 s. Each
window is decoded on its own; the token sequences are then stitched where they
overlap, as the pipeline's `_find_longest_common_sequence` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
CHUNK_S = 30.0


@dataclass(frozen=True)
class Window:
    start: int  # first sample
    stop: int  # one past the last sample
    stride_left: int  # samples at the start that overlap the previous window
    stride_right: int  # samples at the end that overlap the next window


def windows(n_samples: int, chunk_s: float = CHUNK_S, stride_s: float | None = None, sr: int = SAMPLE_RATE) -> list[Window]:
    """The pipeline's chunk_iter: the same starts, lengths and strides."""
    stride_s = chunk_s / 6 if stride_s is None else stride_s
    chunk = int(round(chunk_s * sr))
    stride = int(round(stride_s * sr))
    step = chunk - 2 * stride
    out = []
    for start in range(0, max(n_samples, 1), step):
        stop = start + chunk
        is_last = stop >= n_samples
        piece = min(stop, n_samples) - start
        left = 0 if start == 0 else stride
        if piece > left:
            out.append(Window(start, min(stop, n_samples), left, 0 if is_last else stride))
        if is_last:
            break
    return out


# A file a few samples over 30 s (pyannote_dev00.wav is 480001 samples) would otherwise
# cost a second window for less than one mel frame (160 samples) of audio.
TAIL_TOLERANCE = 160


def split(samples: np.ndarray, chunk_s: float = CHUNK_S) -> list[tuple[Window, np.ndarray]]:
    """Short audio is one window; longer audio the pipeline's strided windows."""
    chunk = int(chunk_s * SAMPLE_RATE)
    if len(samples) <= chunk + TAIL_TOLERANCE:
        samples = samples[:chunk]
        return [(Window(0, len(samples), 0, 0), samples)]
    return [(w, samples[w.start : w.stop]) for w in windows(len(samples), chunk_s)]


def longest_common_sequence(sequences: list[list[int]]) -> list[int]:
    """Stitch overlapping token sequences: transformers' `_find_longest_common_sequence`.

    For each new sequence, slide it against the running one, score each alignment by
    matches / overlap (+ a small bonus for longer overlaps), and join at the middle of
    the best-matching overlap.
    """
    if not sequences:
        return []
    left = list(sequences[0])
    total: list[int] = []
    for right in sequences[1:]:
        right = list(right)
        left_len, right_len = len(left), len(right)
        best, best_idx = 0.0, (left_len, left_len, 0, 0)
        left_arr, right_arr = np.array(left, dtype=np.int64), np.array(right, dtype=np.int64)
        for i in range(1, left_len + right_len):
            eps = i / 10000.0
            ls, le = max(0, left_len - i), min(left_len, left_len + right_len - i)
            rs, re_ = max(0, i - left_len), min(right_len, i)
            matches = int(np.sum(left_arr[ls:le] == right_arr[rs:re_]))
            score = matches / i + eps
            if matches > 1 and score > best:
                best, best_idx = score, (ls, le, rs, re_)
        ls, le, rs, re_ = best_idx
        total.extend(left[: (ls + le) // 2])
        left = right[(rs + re_) // 2 :]
    total.extend(left)
    return total


def stitch_text_tokens(window_tokens: list[list[int]], eot: int) -> list[int]:
    """The pipeline's no-timestamp path: text tokens per window, empty windows skipped, then LCS."""
    previous: list[list[int]] = []
    for tokens in window_tokens:
        text = [t for t in tokens if t < eot]
        if text:
            previous.append(text)
        elif not any(previous):
            previous = []
    return longest_common_sequence(previous)

"""Audio longer than 30 s: two ways to cut it into windows.

"strided" (the default, the fidelity reference): the transformers ASR pipeline's defaults
for `chunk_length_s=30`: 30 s windows, a stride of 5 s on each side (chunk_length_s / 6),
so windows start every 20 s. Each window is decoded on its own; the token sequences are
then stitched where they overlap, as the pipeline's `_find_longest_common_sequence` does.

"silence": windows of at most 30 s that do not overlap, each cut in the middle of the
longest pause of its last 5 s, so a cut rarely falls inside a word or just after a phrase.
No overlap means no stitching (the window texts are joined in order) and a quarter fewer windows for the encoder (12 instead
of 16 on longbench's 5.3 min file; faster-whisper's sequential 30 s walk decodes 11).

"vad": Silero VAD's speech spans (core/vad.py) merged into windows of at most 30 s, as
faster-whisper's BatchedInferencePipeline does; a window is its spans joined, without the
silence between them, which is never decoded. Short files too: no speech, no window.
Times inside a window map back to the file through its spans (file_time).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    # vad: the (start, stop) speech spans the window joins; () when it is samples[start:stop]
    pieces: tuple[tuple[int, int], ...] = ()

    @property
    def n_samples(self) -> int:
        """Samples the window holds (its spans' total for vad windows)."""
        return sum(b - a for a, b in self.pieces) if self.pieces else self.stop - self.start


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


CHUNKINGS = ("strided", "silence", "sequential", "vad")  # sequential: core/sequential.py; vad: core/vad.py
SEARCH_S = 5.0  # a silence cut is looked for in the last SEARCH_S seconds before the limit
FRAME_S, HOP_S = 0.100, 0.010  # short-time energy: 100 ms frames every 10 ms
MIN_TAIL_S = 1.0  # the last window is never shorter: a few samples alone make Whisper hallucinate
QUIET_DB = 6.0  # a frame within QUIET_DB of the stretch's quietest is part of a pause
# Mean square below -70 dBFS counts as -70: digital zeros and a near-silent room are one
# kind of quiet, so a few zeroed samples do not outrank a real pause.
FLOOR_POWER = 1e-7


def _pause_centre(samples: np.ndarray, lo: int, hi: int, frame: int, hop: int) -> int:
    """The centre of the longest pause in samples[lo:hi] (the latest of equals).

    A pause is a run of 100 ms frames within QUIET_DB of the stretch's quietest frame. The
    longest, not the quietest frame: a short gap between two phrases can be as quiet as the
    pause after a sentence, and a cut there leaves the phrase at the very end of its window,
    where Whisper (no timestamps) tends to drop it (a user file lost "and so my fellow
    americans" that way). The centre leaves both windows half the pause.
    """
    frame_starts = np.arange(lo, max(lo, hi - frame) + 1, hop)
    # Energy of any span in the searched stretch from one cumulative sum over it (float64:
    # float32 loses the small differences); only that stretch, so an hour costs no more.
    power = np.concatenate(([0.0], np.cumsum(np.square(samples[lo:hi], dtype=np.float64))))
    frame_ends = np.minimum(frame_starts + frame, hi)
    mean_square = (power[frame_ends - lo] - power[frame_starts - lo]) / (frame_ends - frame_starts)
    level = 10 * np.log10(np.maximum(mean_square, FLOOR_POWER))
    quiet = np.concatenate(([0], (level <= level.min() + QUIET_DB).astype(np.int8), [0]))
    edges = np.diff(quiet)
    first, past = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # runs [first, past)
    lengths = past - first
    run = np.flatnonzero(lengths == lengths.max())[-1]
    pause_start, pause_stop = frame_starts[first[run]], frame_ends[past[run] - 1]
    return int(min((pause_start + pause_stop) // 2, hi))


def silence_windows(samples: np.ndarray, chunk_s: float = CHUNK_S, search_s: float = SEARCH_S, sr: int = SAMPLE_RATE) -> list[Window]:
    """Non-overlapping windows of at most chunk_s, each cut in the longest pause of its last search_s.

    Without any pause the cut still lands at most chunk_s in (at the quietest stretch of the
    search). The windows cover every sample exactly once.
    """
    n = len(samples)
    chunk, search = int(round(chunk_s * sr)), int(round(search_s * sr))
    frame, hop, min_tail = int(round(FRAME_S * sr)), int(round(HOP_S * sr)), int(round(MIN_TAIL_S * sr))
    out, start = [], 0
    while n - start > chunk:
        hi = min(start + chunk, n - min_tail)  # the cut may not leave a tail under MIN_TAIL_S
        lo = max(start + 1, hi - search)
        cut = _pause_centre(samples, lo, hi, frame, hop)
        out.append(Window(start, cut, 0, 0))
        start = cut
    out.append(Window(start, n, 0, 0))
    return out


class _SpeechWindows(Sequence):
    """(Window, its speech joined) for each group of spans, built when asked for: an hour of
    speech is not copied up front (about 230 MB), only the batch being decoded."""

    def __init__(self, samples: np.ndarray, groups: list[list[tuple[int, int]]], chunk: int):
        self._samples, self._groups, self._chunk = samples, groups, chunk

    def __len__(self) -> int:
        return len(self._groups)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        group = self._groups[i]
        piece = np.concatenate([self._samples[a:b] for a, b in group])[: self._chunk]
        return Window(group[0][0], group[-1][1], 0, 0, tuple(group)), piece


def vad_windows(samples: np.ndarray, spans: list[tuple[int, int]], chunk_s: float = CHUNK_S) -> Sequence[tuple[Window, np.ndarray]]:
    """Speech spans merged into windows of at most chunk_s (core/vad.py merge_spans), each
    window's samples its spans joined (built as each window is read)."""
    from whisper_ort.core.vad import merge_spans

    chunk = int(round(chunk_s * SAMPLE_RATE))
    return _SpeechWindows(samples, merge_spans(spans, chunk), chunk)


def file_time(window: Window, t: float, is_end: bool = False) -> float:
    """A time in seconds inside the window's samples, as seconds in the file. vad windows: in
    the span that holds it (an end on a boundary stays in the earlier span), as
    faster-whisper's SpeechTimestampsMap restores times."""
    if not window.pieces:
        return window.start / SAMPLE_RATE + t
    at, before = t * SAMPLE_RATE, 0
    for a, b in window.pieces[:-1]:
        if at < before + (b - a) or (is_end and at == before + (b - a)):
            return (a + at - before) / SAMPLE_RATE
        before += b - a
    a, b = window.pieces[-1]
    return min(a + at - before, b) / SAMPLE_RATE  # a time past the speech (the padding) ends with it


def split(samples: np.ndarray, chunk_s: float = CHUNK_S, chunking: str = "strided", vad=None) -> Sequence[tuple[Window, np.ndarray]]:
    """Short audio is one window; longer audio the pipeline's strided windows or silence-cut
    ones. chunking="vad", any length: vad(samples) -> speech spans, merged (no speech: [])."""
    chunk = int(chunk_s * SAMPLE_RATE)
    if chunking == "vad":
        if vad is None:
            raise ValueError("chunking='vad' needs a VAD: vad(samples) -> speech spans (Transcriber loads Silero from the model folder)")
        return vad_windows(samples, vad(samples), chunk_s)
    if len(samples) <= chunk + TAIL_TOLERANCE:
        samples = samples[:chunk]
        return [(Window(0, len(samples), 0, 0), samples)]
    if chunking == "silence":
        return [(w, samples[w.start : w.stop]) for w in silence_windows(samples, chunk_s)]
    if chunking != "strided":
        raise ValueError(f"chunking must be one of {CHUNKINGS}, not {chunking!r}")
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


def join_text_tokens(window_tokens: list[list[int]], eot: int) -> list[int]:
    """Non-overlapping windows: their text tokens in order (each window's text starts with its own space)."""
    return [t for tokens in window_tokens for t in tokens if t < eot]

"""Long-form windows: the transformers pipeline's strided ones and stitching, and silence-cut ones."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_ort.core.longform import (
    CHUNKINGS,
    TAIL_TOLERANCE,
    join_text_tokens,
    longest_common_sequence,
    silence_windows,
    split,
    stitch_text_tokens,
    windows,
)


class _FakeExtractor:
    sampling_rate = 16000

    def __call__(self, chunk, **kwargs):
        return {}


@pytest.mark.parametrize("seconds", [30.5, 45.0, 60.0, 61.3, 100.0, 3600.0])
def test_windows_equal_pipeline_chunk_iter(seconds):
    from transformers.pipelines.automatic_speech_recognition import chunk_iter

    n = int(seconds * 16000)
    theirs = [item["stride"] for item in chunk_iter(np.zeros(n, np.float32), _FakeExtractor(), 480000, 80000, 80000)]
    ours = [(w.stop - w.start, w.stride_left, w.stride_right) for w in windows(n)]
    assert ours == theirs


def test_short_audio_is_one_window_and_a_tiny_tail_is_trimmed():
    assert len(split(np.zeros(16000 * 12, np.float32))) == 1
    (window, piece), = split(np.zeros(480000 + TAIL_TOLERANCE, np.float32))
    assert window.stop == 480000 and len(piece) == 480000
    assert len(split(np.zeros(480000 + TAIL_TOLERANCE + 1, np.float32))) == 2


def test_lcs_equals_transformers_on_random_overlaps():
    from transformers.models.whisper.tokenization_whisper import _find_longest_common_sequence

    rng = np.random.default_rng(1)
    for _ in range(50):
        text = rng.integers(0, 500, size=int(rng.integers(20, 80))).tolist()
        cut1, cut2 = sorted(rng.integers(5, len(text) - 5, size=2).tolist())
        a, b = text[: cut2 + 3], text[max(0, cut1 - 3) :]
        seqs = [a, b]
        assert longest_common_sequence(seqs) == _find_longest_common_sequence([list(s) for s in seqs])


def test_stitch_drops_special_tokens_and_empty_windows():
    eot = 50257
    assert stitch_text_tokens([[1, 2, 3, 4, eot], [], [3, 4, 5, 6]], eot) == [1, 2, 3, 4, 5, 6]
    assert stitch_text_tokens([[], [7, 8]], eot) == [7, 8]


# ------------------------------------------------------------ silence chunking

SR = 16000


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise everywhere: no pause anywhere to cut at."""
    return np.random.default_rng(seed).standard_normal(int(seconds * SR)).astype(np.float32)


def _assert_tiles(ws, n):
    """Every sample in exactly one window, in order, none over 30 s, no overlap."""
    assert ws[0].start == 0 and ws[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(ws, ws[1:]))
    assert all(0 < w.stop - w.start <= 30 * SR for w in ws)
    assert all(w.stride_left == w.stride_right == 0 for w in ws)


@pytest.mark.parametrize("gap_at", [26.0, 27.3, 29.5])
def test_silence_cut_lands_in_the_gap(gap_at):
    x = _speechlike(70)
    lo, hi = int(gap_at * SR), int((gap_at + 0.3) * SR)
    x[lo:hi] = 0.0
    ws = silence_windows(x)
    _assert_tiles(ws, len(x))
    assert lo <= ws[0].stop <= hi


def test_silence_cut_prefers_the_quietest_of_several_pauses():
    x = _speechlike(50)
    x[int(25.5 * SR) : int(26 * SR)] *= 0.1  # a soft pause
    x[int(27.0 * SR) : int(27.4 * SR)] *= 0.001  # a deep one: the cut goes here
    ws = silence_windows(x)
    assert int(27.0 * SR) <= ws[0].stop <= int(27.4 * SR)


@pytest.mark.parametrize("quiet", [0.0, 1e-4])  # the long pause digital zeros, or a quiet room (-80 dBFS)
def test_silence_cut_goes_to_the_middle_of_the_longest_pause(quiet):
    """A later, shorter gap (digital zeros, as quiet as it gets) loses to a long pause: a cut in
    a short gap between phrases leaves a phrase at the very end of its window."""
    x = _speechlike(50)
    x[int(25.6 * SR) : int(27.0 * SR)] *= quiet
    x[int(28.5 * SR) : int(28.8 * SR)] = 0.0
    ws = silence_windows(x)
    _assert_tiles(ws, len(x))
    assert abs(ws[0].stop - 26.3 * SR) <= 0.06 * SR


@pytest.mark.parametrize("seconds", [30.02, 31.0, 59.9, 60.0, 95.5, 600.0])
def test_silence_windows_cover_everything_without_a_pause(seconds):
    x = _speechlike(seconds, seed=int(seconds))
    ws = silence_windows(x)
    _assert_tiles(ws, len(x))
    # every cut is in the last 5 s before the 30 s limit (before 29 s when that keeps a 1 s tail)
    assert all(24 * SR <= w.stop - w.start for w in ws[:-1])
    assert ws[-1].stop - ws[-1].start >= 1 * SR  # no tail of a few samples


def test_silence_windows_of_digital_silence_are_full_length():
    ws = silence_windows(np.zeros(100 * SR, np.float32))
    _assert_tiles(ws, 100 * SR)
    assert len(ws) == 4


def test_split_modes():
    x = _speechlike(61)
    assert len(split(x)) == 3  # strided: starts every 20 s
    silence = split(x, chunking="silence")
    assert len(silence) == 3 and sum(len(p) for _, p in silence) == len(x)
    for chunking in set(CHUNKINGS) - {"vad"}:  # short audio is one window (vad: its speech, tests/test_vad.py)
        (window, piece), = split(np.zeros(480000 + TAIL_TOLERANCE, np.float32), chunking=chunking)
        assert window.stop == 480000 and len(piece) == 480000
    with pytest.raises(ValueError):
        split(x, chunking="bogus")


def test_join_keeps_every_window_in_order():
    eot = 50257
    assert join_text_tokens([[1, 2, eot], [], [3, eot + 5, 4]], eot) == [1, 2, 3, 4]


@pytest.mark.slow
def test_silence_chunking_batched_equals_unbatched(audio_dir, transcriber):
    """silero_test.wav (60 s): silence windows through batch 2 give the batch-1 tokens."""
    from whisper_ort.core.audio import load_audio

    samples = load_audio(audio_dir / "silero_test.wav")

    one, two = (transcriber.transcribe(samples, chunking="silence", batch_size=b) for b in (1, 2))
    assert one.n_windows == two.n_windows == 3
    assert two.tokens == one.tokens
    assert two.text == one.text
    assert "  " not in one.text.strip()  # windows joined with their own spaces
    stamped = transcriber.transcribe(samples, chunking="silence", batch_size=2, timestamps=True)
    assert stamped.n_windows == 3
    assert all(a.start <= b.start for a, b in zip(stamped.segments, stamped.segments[1:]))
    assert stamped.segments[-1].start >= 54.0  # the last window's segments are offset by its start


@pytest.mark.slow
def test_silence_keeps_the_phrase_before_a_pause(audio_dir, transcriber, tmp_path):
    """The dev clips with 2 s pauses, twice (94.7 s). The quietest-frame cut this project had
    before fell in the short gap after JFK's "and so my fellow americans", the phrase ended its
    window, and the window's text left it out (5 words deleted). The longest pause is the 2 s
    one before JFK."""
    from whisper_ort.measure.longbench import build_long_file
    from whisper_ort.measure.wer import manifest_references, measures

    pieces = ["lj_LJ001-0001.wav", "lj_LJ001-0002.wav", "lj_LJ001-0003.wav", "lj_LJ001-0004.wav", "jfk.flac"]
    path, order, seconds = build_long_file(audio_dir, tmp_path / "talk.wav", 1.5, pieces, 2.0)
    assert len(order) == 10 and 90 < seconds < 100
    refs = manifest_references(audio_dir)
    result = transcriber.transcribe(path, chunking="silence", batch_size=8)
    m = measures(" ".join(refs[n] for n in order), result.text)
    assert m["deletions"] == 0, m
    assert m["hyp"].count("and so my fellow americans") == 2

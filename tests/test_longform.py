"""Long-form windows and stitching are the transformers pipeline's, on synthetic inputs."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_ort.longform import TAIL_TOLERANCE, longest_common_sequence, split, stitch_text_tokens, windows


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

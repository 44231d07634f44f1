"""The numpy log-mel against transformers' WhisperFeatureExtractor, plus its pure helpers."""

from __future__ import annotations

import os

import numpy as np
import pytest

from whisper_ort.core.audio import load_audio
from whisper_ort.core.features import (
    CHUNK_SAMPLES,
    HOP_LENGTH,
    N_FFT,
    N_FRAMES,
    N_MELS,
    log_mel_batch,
    log_mel_spectrogram,
    mel_filters,
    pad_or_trim,
)

CLIPS = [
    "jfk.flac",
    "hotwords.mp3",
    "libri_198-209-0000.ogg",
    "lj_LJ001-0001.wav",
    "pyannote_dev00.wav",
    "silero_test.wav",
    "stereo_diarization.wav",
]


@pytest.fixture(scope="module")
def hf_extractor():
    os.environ["HF_HUB_OFFLINE"] = "1"
    transformers = pytest.importorskip("transformers")
    return transformers.WhisperFeatureExtractor()  # whisper-base's defaults; nothing downloaded


def hf_log_mel(extractor, samples):
    return extractor(samples, sampling_rate=16000, return_tensors="np").input_features[0]


def test_constants():
    assert (N_FFT, HOP_LENGTH, N_MELS, CHUNK_SAMPLES, N_FRAMES) == (400, 160, 80, 480000, 3000)


def test_mel_filters_match_transformers(hf_extractor):
    fb = mel_filters()
    assert fb.shape == (N_MELS, N_FFT // 2 + 1) and fb.dtype == np.float32
    np.testing.assert_allclose(fb, hf_extractor.mel_filters.T, rtol=0, atol=1e-8)
    assert mel_filters() is fb  # computed once
    assert not fb.flags.writeable


@pytest.mark.parametrize("name", CLIPS)
def test_log_mel_matches_transformers(audio_dir, hf_extractor, name):
    samples = load_audio(audio_dir / name)[:CHUNK_SAMPLES]  # silero_test.wav is 60 s: its first window
    ours = log_mel_spectrogram(samples)
    assert ours.shape == (N_MELS, N_FRAMES) and ours.dtype == np.float32
    assert np.abs(ours - hf_log_mel(hf_extractor, samples)).max() <= 1e-4


def test_short_and_silent_inputs(hf_extractor):
    rng = np.random.default_rng(0)
    for samples in [
        np.zeros(16000, np.float32),
        rng.uniform(-1, 1, 1234).astype(np.float32),
        rng.uniform(-1e-3, 1e-3, CHUNK_SAMPLES).astype(np.float32),
    ]:
        assert np.abs(log_mel_spectrogram(samples) - hf_log_mel(hf_extractor, samples)).max() <= 1e-4


def test_longer_input_is_cut_to_one_window():
    x = np.random.default_rng(1).uniform(-0.5, 0.5, CHUNK_SAMPLES + 5000).astype(np.float32)
    np.testing.assert_array_equal(log_mel_spectrogram(x), log_mel_spectrogram(x[:CHUNK_SAMPLES]))


def test_accepts_float64_input():
    x = np.random.default_rng(2).uniform(-0.5, 0.5, 32000)
    np.testing.assert_array_equal(log_mel_spectrogram(x), log_mel_spectrogram(x.astype(np.float32)))


def test_rejects_multichannel_input():
    with pytest.raises(ValueError, match="1-D"):
        log_mel_spectrogram(np.zeros((2, 16000), np.float32))


def test_pad_or_trim():
    x = np.arange(10, dtype=np.float32)
    padded = pad_or_trim(x, 15)
    assert padded.shape == (15,) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[:10], x)
    assert not padded[10:].any()
    np.testing.assert_array_equal(pad_or_trim(x, 4), x[:4])
    assert pad_or_trim(x, 10) is x
    assert pad_or_trim(np.zeros(7, np.float32)).shape == (CHUNK_SAMPLES,)
    assert pad_or_trim(np.ones((3, 7), np.float32), 5).shape == (3, 5)  # last axis only


def test_batch_equals_single_windows(audio_dir):
    windows = [
        load_audio(audio_dir / "jfk.flac"),
        load_audio(audio_dir / "lj_LJ001-0002.wav"),
        load_audio(audio_dir / "silero_test.wav")[CHUNK_SAMPLES:],
        np.zeros(100, np.float32),
    ]
    batch = log_mel_batch(windows)
    assert batch.shape == (len(windows), N_MELS, N_FRAMES) and batch.dtype == np.float32
    for row, window in zip(batch, windows, strict=True):
        np.testing.assert_array_equal(row, log_mel_spectrogram(window))
    assert log_mel_batch([]).shape == (0, N_MELS, N_FRAMES)


@pytest.mark.parametrize("n", [0, 1, 200, 201, 16000, 32077, CHUNK_SAMPLES - N_FFT - 1, CHUNK_SAMPLES - N_FFT, CHUNK_SAMPLES])
def test_skipping_the_padding_frames_is_exact(monkeypatch, n):
    from whisper_ort.core import features

    x = np.random.default_rng(n).uniform(-0.5, 0.5, n).astype(np.float32)
    skipped = log_mel_spectrogram(x)
    monkeypatch.setattr(features, "_frames_with_audio", lambda n_samples: N_FRAMES)  # every frame through the FFT
    np.testing.assert_array_equal(skipped, log_mel_spectrogram(x))


def test_fft_blocks_do_not_change_the_features(audio_dir, monkeypatch):
    """Frames go through the FFT in blocks (a few MB of temporaries); any block size gives
    the same bits, for a window and for a whole recording."""
    from whisper_ort.core import features

    samples = load_audio(audio_dir / "jfk.flac")
    long = np.concatenate([samples] * 4)
    blocked = features.log_mel_spectrogram(samples), features.log_mel_frames(long)
    monkeypatch.setattr(features, "BLOCK_FRAMES", 100_000)
    whole = features.log_mel_spectrogram(samples), features.log_mel_frames(long)
    assert features.BLOCK_FRAMES > long.size // features.HOP_LENGTH > 500
    for a, b in zip(blocked, whole):
        assert np.array_equal(a, b)

"""Awkward and broken inputs: each one loads correctly or raises a one-line AudioError."""

from __future__ import annotations

import os

import numpy as np
import pytest
from bad_audio import OK, OK_DURATION_S, make_bad_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whisper_ort.core.audio import SAMPLE_RATE, AudioError, duration_s, load_audio

EXTENSIONS = [".wav", ".flac", ".ogg", ".mp3", ".aiff", ".m4a", ".opus", ".mp4", ".webm", ".mkv", ".txt", ""]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad audio")
    return folder, make_bad_corpus(folder)


def check_one(path, verdict):
    """Assert `path` behaves as `verdict` says; return the samples or the error."""
    if verdict == OK:
        y = load_audio(path)
        assert y.dtype == np.float32 and y.ndim == 1 and y.flags.c_contiguous
        assert np.isfinite(y).all()
        if path.name.startswith("truncated_"):
            assert 0 < duration_s(y) <= OK_DURATION_S + 0.05
        else:
            assert duration_s(y) == pytest.approx(OK_DURATION_S, abs=0.05)
        return y
    with pytest.raises(AudioError) as info:
        load_audio(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and len(msg) > len(f"{path}: ")
    assert "\n" not in msg and "\r" not in msg
    assert info.value.path == str(path) and info.value.cause
    return info.value


def test_corpus_is_complete(corpus):
    _, expected = corpus
    for name in [
        "empty.wav",
        "zero_length.wav",
        "header_only.wav",
        "truncated_half.flac",
        "truncated_half.mp3",
        "random_bytes.wav",
        "text.mp3",
        "folder.wav",
        "pcm_u8.wav",
        "pcm_24.wav",
        "float32.wav",
        "rate_8k.wav",
        "rate_48k.wav",
        "six_channels.wav",
        "nan_inf.wav",
        "clipped_int.wav",
        "name with spaces.wav",
        "ünïcødé 音声.wav",
        "-leading-dash.wav",
    ]:
        assert name in expected
    if os.geteuid() != 0:
        assert "no_read_permission.wav" in expected


def test_each_bad_file(corpus):
    folder, expected = corpus
    failures = []
    for name, verdict in expected.items():
        try:
            check_one(folder / name, verdict)
        except (Exception, pytest.fail.Exception) as exc:  # check every file, report all failures at once
            failures.append(f"{name} (expected {verdict}): {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "name, cause",
    [
        ("empty.wav", "empty file"),
        ("zero_length.wav", "no audio samples"),
        ("header_only.wav", "no audio samples"),
        ("random_bytes.wav", "not an audio file"),
        ("text.mp3", "not an audio file"),
        ("folder.wav", "is a directory"),
        ("video_only.mp4", "no audio stream"),
        ("rate_500hz.wav", "unsupported sample rate"),
    ],
)
def test_error_causes(corpus, name, cause):
    folder, expected = corpus
    if name not in expected:
        pytest.skip(f"{name} could not be made here")
    err = check_one(folder / name, expected[name])
    assert cause in err.cause


def test_permission_denied(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    path = tmp_path / "locked.wav"
    path.write_bytes(b"RIFF")
    os.chmod(path, 0)
    with pytest.raises(AudioError, match="permission denied"):
        load_audio(path)


def test_non_finite_samples_become_zero(corpus):
    folder, _ = corpus
    y = load_audio(folder / "all_nan.wav")
    assert len(y) == SAMPLE_RATE and not y.any()
    # A few bad samples in a tone: the rest of the tone survives.
    y = load_audio(folder / "nan_inf.wav")
    assert np.isfinite(y).all() and np.abs(y).max() > 0.4


def test_loud_samples_are_not_clipped(corpus):
    folder, _ = corpus
    assert np.abs(load_audio(folder / "over_full_scale.wav")).max() > 3.0


def test_pyav_containers(corpus):
    folder, expected = corpus
    made = [n for n in ("aac.m4a", "opus.webm", "video_then_audio.mp4") if n in expected]
    if not made:
        pytest.skip("PyAV has no aac/opus encoder here")
    for name in made:
        y = check_one(folder / name, OK)
        # the 440 Hz tone survives lossy coding
        spectrum = np.abs(np.fft.rfft(y))
        assert np.argmax(spectrum) * SAMPLE_RATE / len(y) == pytest.approx(440, abs=5), name


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=4096), ext=st.sampled_from(EXTENSIONS))
def test_random_bytes_load_or_audio_error(tmp_path, data, ext):
    path = tmp_path / f"fuzz{ext}"
    path.write_bytes(data)
    try:
        y = load_audio(path)
    except AudioError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
    else:
        assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.ndim == 1


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    source=st.sampled_from(["hotwords.mp3", "jfk.flac", "libri_198-209-0000.ogg", "pyannote_dev00.wav"]),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=20),
    ext=st.sampled_from(EXTENSIONS),
)
def test_damaged_real_files_load_or_audio_error(tmp_path, audio_dir, source, cut, flips, ext):
    """Real files cut short and with bytes overwritten: finite float32 samples or AudioError.

    Damaged MP3 and float WAV data decode to garbage as large as 1e37 (libmpg123 even
    returns different garbage on each read); whatever comes out must still be finite.
    """
    data = bytearray((audio_dir / source).read_bytes())
    data = data[: max(1, int(len(data) * cut))]
    for where, value in flips:
        data[min(len(data) - 1, int(where * len(data)))] = value
    path = tmp_path / f"damaged{ext}"
    path.write_bytes(bytes(data))
    try:
        y = load_audio(path)
    except AudioError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
    else:
        assert y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()

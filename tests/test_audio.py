"""load_audio on the real sample files: dtype, rate, length, and agreement with librosa.load."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf

from whisper_ort.core.audio import SAMPLE_RATE, AudioError, duration_s, load_audio

# One of each container / rate / channel layout librosa decodes through libsndfile.
LIBROSA_FILES = [
    "lj_LJ001-0002.wav",  # WAV PCM_16, 22050 Hz
    "sr_english.wav",  # WAV PCM_16, 44100 Hz
    "pyannote_dev00.wav",  # WAV FLOAT, 16 kHz (no resampling)
    "jfk.flac",  # FLAC PCM_24, 44.1 kHz stereo
    "libri_198-209-0000.ogg",  # OGG Vorbis
    "hotwords.mp3",  # MP3, 44.1 kHz stereo
    "stereo_diarization.wav",  # stereo, 16 kHz
]


def test_every_sample_file_loads(audio_dir, manifest):
    assert manifest, "MANIFEST.csv lists no files"
    for row in manifest:
        y = load_audio(audio_dir / row["file"])
        assert y.dtype == np.float32 and y.ndim == 1 and y.flags.c_contiguous, row["file"]
        assert np.isfinite(y).all(), row["file"]
        assert duration_s(y) == pytest.approx(float(row["duration_s"]), abs=0.05), row["file"]


@pytest.mark.parametrize("name", LIBROSA_FILES)
def test_matches_librosa_load(audio_dir, name):
    librosa = pytest.importorskip("librosa")
    path = audio_dir / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, sr = librosa.load(path, sr=SAMPLE_RATE)
    y = load_audio(path)
    assert sr == SAMPLE_RATE
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() <= 1e-5


def test_accepts_str_and_path(audio_dir):
    path = audio_dir / "lj_LJ001-0002.wav"
    np.testing.assert_array_equal(load_audio(str(path)), load_audio(path))


def test_pyav_path_matches_soundfile_path(tmp_path, audio_dir):
    """The same PCM in a Matroska container (PyAV) and in a WAV file (libsndfile) load alike."""
    av = pytest.importorskip("av")
    x, sr = sf.read(audio_dir / "stereo_diarization.wav", dtype="int16")
    sf.write(tmp_path / "a.wav", x, sr, subtype="PCM_16")
    with av.open(str(tmp_path / "a.mkv"), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=sr, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = sr
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    np.testing.assert_array_equal(load_audio(tmp_path / "a.mkv"), load_audio(tmp_path / "a.wav"))


def test_resamples_a_tone_to_the_right_pitch(tmp_path):
    # 1 kHz at 44.1 kHz must still peak at 1 kHz after resampling to 16 kHz.
    t = np.arange(44100) / 44100
    sf.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), 44100, subtype="PCM_16")
    y = load_audio(tmp_path / "tone.wav")
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) * SAMPLE_RATE / len(y) == pytest.approx(1000, abs=2)


def test_downmix_is_the_channel_mean(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (16000, 3)).astype(np.float32)
    sf.write(tmp_path / "three.wav", x, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "three.wav"), x.mean(axis=1), atol=1e-7)


def test_error_names_file_and_cause(tmp_path):
    path = tmp_path / "x.wav"
    path.write_text("hello, not audio\n")
    with pytest.raises(AudioError) as info:
        load_audio(path)
    err = info.value
    assert err.path == str(path)
    assert str(err) == f"{path}: {err.cause}"
    assert "not an audio file" in err.cause


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.flac")


def test_duration_s():
    assert duration_s(np.zeros(24000, np.float32)) == 1.5


@pytest.mark.parametrize("channels", [2, 3, 6, 7, 8, 9, 12])
def test_downmix_equals_the_mean_of_the_channels(channels):
    """The fast downmix gives numpy's (librosa's) mean to the bit, for interleaved (n,
    channels) frames seen as (channels, n) and for planar ones."""
    from whisper_ort.core.audio import _downmix

    rng = np.random.default_rng(channels)
    interleaved = (rng.standard_normal((48_000, channels)) * rng.uniform(0.01, 100, channels)).astype(np.float32)
    for x in (interleaved.T, np.ascontiguousarray(interleaved.T)):
        assert np.array_equal(_downmix(x), x.mean(axis=0, dtype=np.float32))

"""A corpus of awkward and broken audio files, built on demand in a temporary folder.

Not a test module (pytest collects only test_*.py): test_bad_audio.py and the CLI tests
import `make_bad_corpus` from it. Every file that should load is a 1 s signal (truncated
files: at most 1 s), so a caller can check lengths as well as dtypes.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

OK, ERROR = "ok", "error"
OK_DURATION_S = 1.0  # every "ok" file except those named truncated_* decodes to this (+-0.05 s)


def tone(sr: int, seconds: float = 1.0, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    """A 440 Hz sine with a little noise; (n,) or (n, channels) float32."""
    t = np.arange(int(round(sr * seconds))) / sr
    x = amp * np.sin(2 * np.pi * 440 * t) + 0.01 * np.random.default_rng(0).standard_normal(len(t))
    x = x.astype(np.float32)
    if channels > 1:
        x = np.stack([x * (0.5 + 0.5 * c / channels) for c in range(channels)], axis=1)
    return x


def encode_with_pyav(
    path: Path, codec: str, sr: int = 48000, seconds: float = 1.0, video: str | None = None, audio: bool = True
) -> None:
    """Write `seconds` of tone as `codec` (aac, libopus, ...) with PyAV; optionally a video stream first."""
    import av

    with av.open(str(path), "w") as out:
        vstream = None
        if video:
            vstream = out.add_stream(video, rate=10)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        astream = out.add_stream(codec, rate=sr, layout="mono") if audio else None
        if vstream is not None:
            for i in range(int(10 * seconds)):
                img = np.full((48, 64, 3), (i * 20) % 255, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                out.mux(vstream.encode(frame))
            out.mux(vstream.encode(None))
        if astream is not None:
            x = tone(sr, seconds)
            step = 960
            for start in range(0, len(x), step):
                chunk = x[start : start + step]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                frame.sample_rate = sr
                frame.pts = start
                frame.time_base = Fraction(1, sr)
                out.mux(astream.encode(frame))
            out.mux(astream.encode(None))


def make_bad_corpus(folder: str | os.PathLike) -> dict[str, str]:
    """Write the corpus into `folder`; return {file name: "ok" | "error"}.

    "ok": load_audio must return float32 mono 16 kHz of the right length.
    "error": load_audio must raise AudioError naming the file on a single line.
    Files PyAV cannot encode here (no aac/opus/mpeg4 encoder) are left out.
    """
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}

    def put(name: str, data: bytes, verdict: str) -> None:
        (d / name).write_bytes(data)
        expected[name] = verdict

    # -- nothing there or not a file
    put("empty.wav", b"", ERROR)
    put("random_bytes.wav", np.random.default_rng(1).bytes(4096), ERROR)
    put("text.mp3", b"This is not an mp3, just some text.\n" * 20, ERROR)
    put("text.m4a", b"Neither is this an m4a.\n" * 20, ERROR)
    (d / "folder.wav").mkdir(exist_ok=True)
    expected["folder.wav"] = ERROR
    # Root reads anything, so the permission case only means something for other users.
    if os.geteuid() != 0:
        sf.write(d / "no_read_permission.wav", tone(16000), 16000)
        os.chmod(d / "no_read_permission.wav", 0)
        expected["no_read_permission.wav"] = ERROR

    # -- valid headers, no samples
    sf.write(d / "zero_length.wav", np.zeros(0, np.float32), 16000, subtype="PCM_16")
    expected["zero_length.wav"] = ERROR
    sf.write(d / "_full.wav", tone(16000), 16000, subtype="PCM_16")
    put("header_only.wav", (d / "_full.wav").read_bytes()[:44], ERROR)
    (d / "_full.wav").unlink()

    # A rate no audio has (what a damaged header can claim): refused, not resampled 32x up.
    sf.write(d / "rate_500hz.wav", tone(500), 500, subtype="PCM_16")
    expected["rate_500hz.wav"] = ERROR

    # -- truncated and damaged
    sf.write(d / "_full.flac", tone(44100, 2.0), 44100, subtype="PCM_16")
    full = (d / "_full.flac").read_bytes()
    put("truncated_half.flac", full[: len(full) // 4], OK)  # the first ~0.5 s decodes
    put("truncated_header.flac", full[:30], ERROR)
    (d / "_full.flac").unlink()
    sf.write(d / "_full.mp3", tone(44100, 2.0), 44100, format="MP3")
    full = (d / "_full.mp3").read_bytes()
    put("truncated_half.mp3", full[: len(full) // 4], OK)
    put("truncated_header.mp3", full[:10], ERROR)
    (d / "_full.mp3").unlink()
    sf.write(d / "_full.wav", tone(16000), 16000, subtype="PCM_16")
    full = (d / "_full.wav").read_bytes()
    put("garbage_after_header.wav", full[:44] + np.random.default_rng(2).bytes(len(full) - 44), OK)
    put("truncated_half.wav", full[: len(full) // 2], OK)
    (d / "_full.wav").unlink()

    # -- every bit depth, rate and channel count
    for name, sr, ch, subtype in [
        ("pcm_u8.wav", 16000, 1, "PCM_U8"),
        ("pcm_24.wav", 16000, 1, "PCM_24"),
        ("pcm_32.wav", 16000, 1, "PCM_32"),
        ("float32.wav", 16000, 1, "FLOAT"),
        ("float64.wav", 16000, 1, "DOUBLE"),
        ("rate_8k.wav", 8000, 1, "PCM_16"),
        ("rate_48k.wav", 48000, 1, "PCM_16"),
        ("rate_11025.aiff", 11025, 1, "PCM_16"),
        ("six_channels.wav", 48000, 6, "PCM_16"),
        ("stereo_24.flac", 44100, 2, "PCM_24"),
        ("vorbis.ogg", 22050, 1, "VORBIS"),
        ("name with spaces.wav", 16000, 1, "PCM_16"),
        ("ünïcødé 音声.wav", 16000, 1, "PCM_16"),
        ("-leading-dash.wav", 16000, 1, "PCM_16"),
    ]:
        sf.write(d / name, tone(sr, channels=ch), sr, subtype=subtype)
        expected[name] = OK
    # FLAC data behind a .wav name: libsndfile goes by content, not by extension.
    sf.write(d / "flac_named.wav", tone(16000), 16000, format="FLAC")
    expected["flac_named.wav"] = OK

    # -- odd sample values: non-finite become 0, loud ones pass through
    x = tone(16000)
    x[100:200] = np.nan
    x[300] = np.inf
    x[400] = -np.inf
    sf.write(d / "nan_inf.wav", x, 16000, subtype="FLOAT")
    expected["nan_inf.wav"] = OK
    sf.write(d / "all_nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    expected["all_nan.wav"] = OK
    sf.write(d / "clipped_int.wav", np.clip(tone(16000, amp=3.0), -1, 1), 16000, subtype="PCM_16")
    expected["clipped_int.wav"] = OK
    sf.write(d / "over_full_scale.wav", tone(16000, amp=4.0), 16000, subtype="FLOAT")
    expected["over_full_scale.wav"] = OK
    sf.write(d / "silence.wav", np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    expected["silence.wav"] = OK

    # -- containers libsndfile does not read, made with PyAV when its encoders are here
    for name, kwargs in [
        ("aac.m4a", dict(codec="aac", sr=44100)),
        ("opus.webm", dict(codec="libopus", sr=48000)),
        ("video_then_audio.mp4", dict(codec="aac", sr=48000, video="mpeg4")),
        ("video_only.mp4", dict(codec="aac", video="mpeg4", audio=False)),
    ]:
        try:
            encode_with_pyav(d / name, **kwargs)
        except Exception:  # encoder missing in this FFmpeg build: leave the case out
            (d / name).unlink(missing_ok=True)
            continue
        expected[name] = ERROR if name == "video_only.mp4" else OK
    return expected

"""Whisper's log-mel spectrogram in plain numpy: 80 mel bands x 3000 frames per 30 s window.

Equal to transformers' WhisperFeatureExtractor (default padding to 30 s) within 1e-4:
a periodic Hann window of 400 samples, hop 160, centred frames with reflect padding,
|rfft|^2, the slaney mel filterbank (0-8 kHz), log10 clamped at 1e-10, then the
dynamic range limited to 8 (i.e. 80 dB) below the window's maximum and scaled
(x + 4) / 4. The last STFT frame is dropped, so 480000 samples give 3000 frames.

The FFT and the mel projection run in float64 (numpy's float64 rfft is the faster one),
the log and the output in float32. Measured on the sample clips against the HF extractor:
<= 2.4e-7 max abs from its float64 numpy path (float32 rounding), <= 2.5e-5 from its
float32 torch path (the one it picks when torch is installed), inside the 1e-4 budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
N_MELS = 80
CHUNK_LENGTH_S = 30
CHUNK_SAMPLES = CHUNK_LENGTH_S * SAMPLE_RATE  # 480000
N_FRAMES = CHUNK_SAMPLES // HOP_LENGTH  # 3000


def _hz_to_mel(f):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    logstep = 27.0 / np.log(6.4)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) * logstep, 3.0 * f / 200.0)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), 200.0 * m / 3.0)


@cache
def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 slaney filterbank, as transformers' mel_filter_bank
    (norm="slaney", mel_scale="slaney", 0 Hz to sample_rate / 2) builds it. Computed once;
    the returned array is read-only because it is shared."""
    n_bins = n_fft // 2 + 1
    fft_freqs = np.linspace(0, sample_rate // 2, n_bins)
    mels = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2)
    edges = _mel_to_hz(mels)  # left edge, centre and right edge of each triangle
    slopes = edges[None, :] - fft_freqs[:, None]  # (n_bins, n_mels + 2)
    down = -slopes[:, :-2] / np.diff(edges)[:-1]
    up = slopes[:, 2:] / np.diff(edges)[1:]
    weights = np.maximum(0.0, np.minimum(down, up))
    weights *= 2.0 / (edges[2:] - edges[:-2])  # slaney norm: constant energy per band
    out = np.ascontiguousarray(weights.T, dtype=np.float32)
    out.flags.writeable = False
    return out


@cache
def _hann_window(n: int = N_FFT) -> np.ndarray:
    """Periodic Hann (torch.hann_window, transformers' window_function(n, "hann")), float64."""
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    w.flags.writeable = False
    return w


def pad_or_trim(samples: np.ndarray, length: int = CHUNK_SAMPLES) -> np.ndarray:
    """Zero-pad or cut the last axis to `length` samples (returns the input when it fits)."""
    n = samples.shape[-1]
    if n > length:
        return samples[..., :length]
    if n < length:
        pad = [(0, 0)] * (samples.ndim - 1) + [(0, length - n)]
        return np.pad(samples, pad)
    return samples


def log_mel_spectrogram(samples: np.ndarray) -> np.ndarray:
    """Log-mel of one window of 16 kHz samples (at most 30 s; longer input is cut, as the
    HF extractor does): float32 (N_MELS, N_FRAMES)."""
    out = np.empty((N_MELS, N_FRAMES), np.float32)
    _log_mel_into(samples, out)
    return out


def log_mel_batch(windows: Sequence[np.ndarray]) -> np.ndarray:
    """Log-mel of several windows: float32 (len(windows), N_MELS, N_FRAMES).

    Each window is padded/cut to 30 s and normalised on its own maximum, so row i equals
    log_mel_spectrogram(windows[i]) exactly. Windows go one at a time: the FFT gains
    nothing from a batch.
    """
    out = np.empty((len(windows), N_MELS, N_FRAMES), np.float32)
    for i, window in enumerate(windows):
        _log_mel_into(window, out[i])
    return out


def log_mel_frames(samples: np.ndarray, block_frames: int | None = None) -> np.ndarray:
    """Log-mel of a whole recording, as WhisperFeatureExtractor(truncation=False,
    padding="longest") makes it for long-form generate: float32 (N_MELS, len // HOP_LENGTH),
    the dynamic range limited below the maximum of the whole recording (not of each 30 s).
    Sequential long-form decoding (core/sequential.py) cuts its windows from this.

    Computed block by block, so the float64 temporaries stay at a few MB whatever the
    length; the output itself is 19 MB per hour of audio."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected 1-D mono samples, got shape {x.shape}")
    n_frames = x.shape[0] // HOP_LENGTH
    out = np.empty((N_MELS, n_frames), np.float32)
    padded = np.pad(x, N_FFT // 2, mode="reflect" if x.shape[0] > N_FFT // 2 else "constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]
    _mel_power_into(frames, out, block_frames)
    np.maximum(out, np.float32(1e-10), out=out)
    np.log10(out, out=out)
    if n_frames:
        np.maximum(out, out.max() - np.float32(8.0), out=out)
    out += np.float32(4.0)
    out /= np.float32(4.0)
    return out


@cache
def _mel_bands() -> list[tuple[int, int, np.ndarray]]:
    """Each mel filter as (first bin, end bin, weights): a triangle spans at most 14 of 201 bins."""
    bands = []
    for row in mel_filters().astype(np.float64):
        nz = np.flatnonzero(row)
        bands.append((int(nz[0]), int(nz[-1]) + 1, row[nz[0] : nz[-1] + 1]))
    return bands


# Frames per FFT block: a block's float64 temporaries (frames x window, the complex
# spectrum, the power) stay in the L2 cache's reach, ~4 MB rather than the ~30 MB of a
# whole 30 s window. Same bits, and faster: AMD EPYC (Zen 3, AVX2), medians of 20
# interleaved runs, a 30 s window 29.5 -> 18.1 ms, 9 min of log_mel_frames 467 -> 275 ms
# (250 frames: as fast; 1000: 28 ms).
BLOCK_FRAMES = 500


def _mel_power_into(frames: np.ndarray, out: np.ndarray, block_frames: int | None = None) -> None:
    """Mel power (not yet log) of each frame (n, N_FFT) into out (N_MELS, n), block by block."""
    block_frames = block_frames or BLOCK_FRAMES
    for start in range(0, frames.shape[0], block_frames):
        block = frames[start : start + block_frames]
        # float64 FFT: numpy's float32 rfft (pocketfft) is ~1.8x slower than its float64 one here.
        spec = np.fft.rfft(block * _hann_window())
        power = spec.real**2 + spec.imag**2
        # Mel projection band by band rather than one (80 x 201) @ (201 x frames) GEMM: the
        # filterbank is 98 % zeros, and a threaded BLAS call this small slows down 10-30x when
        # its threads compete for the cores with ONNX Runtime's (or anyone's) spinning threads.
        for m, (lo, hi, weights) in enumerate(_mel_bands()):
            out[m, start : start + len(block)] = power[:, lo:hi] @ weights


def _frames_with_audio(n_samples: int) -> int:
    """Frames whose 400-sample window reaches into the first n_samples; every later frame
    sees only the zero padding (and its reflection), so its power is exactly 0 and its
    FFT is skipped: 2 s of audio needs 202 of the 3000 frames (11 ms -> 1 ms)."""
    if n_samples >= CHUNK_SAMPLES - N_FFT:  # the reflected tail may hold samples
        return N_FRAMES
    return min(N_FRAMES, (n_samples + N_FFT // 2) // HOP_LENGTH + 1)


def _log_mel_into(samples: np.ndarray, out: np.ndarray) -> None:
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected 1-D mono samples, got shape {x.shape}")
    live = _frames_with_audio(x.shape[0])
    x = pad_or_trim(x)
    # Centred frames: reflect-pad N_FFT // 2 on both sides (torch.stft(center=True)), take a
    # strided view of the frames (no copy) and only the N_FRAMES kept: the STFT's final
    # frame, which Whisper drops, is never computed.
    x = np.pad(x, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP_LENGTH][:live]
    _mel_power_into(frames, out[:, :live])
    out[:, live:] = 0.0  # frames of the zero padding: their power is exactly 0
    np.maximum(out, np.float32(1e-10), out=out)
    np.log10(out, out=out)
    np.maximum(out, out.max() - np.float32(8.0), out=out)
    out += np.float32(4.0)
    out /= np.float32(4.0)

"""Any audio file -> float32 mono 16 kHz samples, or one clear AudioError.

Decoding follows `librosa.load(path, sr=16000)` (librosa 0.11) so that the samples match
it to float32 rounding: libsndfile through `soundfile` reads float32 frames, channels are
averaged in float32, and `soxr` resamples at its 'HQ' quality to exactly
ceil(n * 16000 / sr) samples. What libsndfile cannot read (m4a, opus in mp4/webm,
video containers, ...) is decoded with PyAV from the first audio stream, then downmixed
and resampled the same way. librosa is not imported here: it is slow to import.
"""

from __future__ import annotations

import math
import os
import stat

import numpy as np

SAMPLE_RATE = 16000
MIN_RATE, MAX_RATE = 1000, 1_000_000  # native rates accepted, in Hz


class AudioError(Exception):
    """A file that cannot be turned into samples. str() is one line: '<path>: <cause>'."""

    def __init__(self, path: str | os.PathLike, cause: str):
        self.path = os.fspath(path)
        # One line, whatever the decoder said (libsndfile and FFmpeg messages can hold newlines).
        self.cause = " ".join(str(cause).split()) or "unknown error"
        name = self.path.replace("\n", "\\n").replace("\r", "\\r")
        super().__init__(f"{name}: {self.cause}")

    def __reduce__(self):  # pickles across processes (the bench runs peers in subprocesses)
        return type(self), (self.path, self.cause)


def duration_s(samples: np.ndarray) -> float:
    """Length in seconds of 16 kHz samples."""
    return len(samples) / SAMPLE_RATE


def load_audio(path: str | os.PathLike) -> np.ndarray:
    """Decode `path` to C-contiguous float32 mono samples at 16 kHz.

    NaN and +-inf samples become 0 rather than failing: one bad sample should not cost a
    transcript. Raises AudioError for anything that yields no samples.
    """
    _check_file(path)
    # Garbage from damaged files may overflow in the downmix or the resampler: no warnings,
    # the non-finite samples are zeroed below.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            y, sr = _read_soundfile(path)
        except _SoundfileFailed as sf_exc:
            y, sr = _read_pyav(path, sf_exc.cause)
    if y.shape[-1] == 0:
        raise AudioError(path, "no audio samples (0 frames)")
    if not MIN_RATE <= sr <= MAX_RATE:
        # A damaged header can claim 1 Hz: resampling that to 16 kHz would need gigabytes.
        raise AudioError(path, f"unsupported sample rate ({sr} Hz)")
    _zero_non_finite(y)  # before resampling, or one NaN smears over the filter's length
    with np.errstate(over="ignore", invalid="ignore"):
        y = _resample(y, sr)
    # Damaged files can decode to finite garbage (1e37) that resampling overflows to inf.
    return _zero_non_finite(y)


def _zero_non_finite(y: np.ndarray) -> np.ndarray:
    if not np.isfinite(y).all():
        np.nan_to_num(y, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return y


def _check_file(path) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AudioError(path, "no such file") from None
    except OSError as exc:
        raise AudioError(path, exc.strerror.lower() if exc.strerror else str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(path, "is a directory")
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or device could block forever or be consumed by the first decoder.
        raise AudioError(path, "not a regular file")
    if st.st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise AudioError(path, exc.strerror.lower() if exc.strerror else str(exc)) from None


class _SoundfileFailed(Exception):
    def __init__(self, cause: str):
        self.cause = cause


def _read_soundfile(path) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the native rate, as librosa's soundfile path + to_mono."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            sr = f.samplerate
            if f.channels == 1:
                y = f.read(dtype="float32")
            else:
                # Downmix block by block (an hour of 44.1 kHz stereo is 1.3 GB as float32
                # frames), with librosa.to_mono's expression: the mean over the (channels, n) view.
                blocks = [b.T.mean(axis=0) for b in f.blocks(blocksize=1 << 20, dtype="float32")]
                y = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    except sf.LibsndfileError as exc:
        cause = exc.error_string.rstrip(".")
        if "not a regular file" in cause:
            # libsndfile says this of data its MPEG probe rejects; _check_file saw a regular file.
            cause = "Format not recognised"
        raise _SoundfileFailed(cause) from None
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError) as exc:
        raise _SoundfileFailed(str(exc)) from None
    return y, sr


def _read_pyav(path, sf_cause: str) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with PyAV to mono float32 and its rate.

    Packets that fail to decode are skipped, as the ffmpeg command line does, so a
    truncated or damaged file yields what can be decoded; nothing at all is an error.
    """
    import av

    try:
        container = av.open(os.fspath(path), metadata_errors="ignore")
    except av.FFmpegError:
        # Neither decoder knows it; libsndfile's words ("Format not recognised") say it best.
        raise AudioError(path, f"not an audio file ({sf_cause})") from None
    except (OSError, ValueError, UnicodeError) as exc:
        raise AudioError(path, f"not an audio file ({exc})") from None
    with container:
        if not container.streams.audio:
            raise AudioError(path, "no audio stream")
        stream = container.streams.audio[0]
        chunks, sr, last_error = [], None, None
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.FFmpegError as exc:  # a damaged packet: skip it
                    last_error = exc
                    continue
                for frame in frames:
                    if sr is None:
                        sr = frame.sample_rate
                    elif frame.sample_rate != sr:
                        raise AudioError(path, f"sample rate changes mid-stream ({sr} -> {frame.sample_rate} Hz)")
                    chunks.append(_frame_to_mono(frame))
        except av.FFmpegError as exc:  # demuxing itself failed: keep what was decoded
            last_error = exc
        except (ValueError, TypeError, NotImplementedError) as exc:  # a sample format PyAV cannot convert
            raise AudioError(path, f"cannot decode audio ({exc})") from None
    if not chunks or sum(len(c) for c in chunks) == 0:
        if last_error is not None:
            raise AudioError(path, f"cannot decode audio ({_av_message(last_error)})")
        raise AudioError(path, "no audio samples (0 frames)")
    return np.concatenate(chunks), int(sr)


# Integer sample formats -> float, as libswresample converts them (x / 2**(bits-1)).
_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def _frame_to_mono(frame) -> np.ndarray:
    """One decoded frame -> mono float32 (downmixed per frame to keep memory flat)."""
    fmt = frame.format.name.rstrip("p")
    channels = frame.layout.nb_channels
    x = frame.to_ndarray()
    # Planar formats come as (channels, n); packed ones as (1, n * channels).
    x = x.reshape(channels, -1) if frame.format.is_planar else x.reshape(-1, channels).T
    if fmt == "u8":
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif fmt in _INT_SCALE:
        x = x.astype(np.float32) / np.float32(_INT_SCALE[fmt])
    else:
        x = x.astype(np.float32, copy=False)
    return x.mean(axis=0, dtype=np.float32) if channels > 1 else x[0]


def _av_message(exc) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _resample(y: np.ndarray, sr: int) -> np.ndarray:
    """librosa.resample(res_type='soxr_hq', fix=True) for 1-D float32, C-contiguous out."""
    if sr != SAMPLE_RATE:
        import soxr

        n_out = int(math.ceil(y.shape[-1] * (float(SAMPLE_RATE) / sr)))
        y = soxr.resample(y, sr, SAMPLE_RATE, quality="HQ")
        # librosa.util.fix_length: trim or zero-pad to ceil(n * ratio).
        if len(y) > n_out:
            y = y[:n_out]
        elif len(y) < n_out:
            y = np.pad(y, (0, n_out - len(y)))
    return np.ascontiguousarray(y, dtype=np.float32)

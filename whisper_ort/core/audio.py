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
BLOCK_FRAMES = 1 << 20  # native-rate frames decoded, downmixed and resampled at a time
MAX_HINT_S = 6 * 3600  # the longest stated length trusted for the one allocation of the output


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

    The file is read, downmixed and resampled block by block (soxr's stream gives the
    one-shot result bit for bit): only the 16 kHz signal is ever held whole, 230 MB for an
    hour, not the native-rate frames as well (an hour of 44.1 kHz stereo: 1.3 GB).
    """
    _check_file(path)
    # Garbage from damaged files may overflow in the downmix or the resampler: no warnings,
    # the non-finite samples are zeroed below.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            return _resampled(path, _soundfile_blocks(path))
        except _SoundfileFailed as sf_exc:
            return _resampled(path, _pyav_blocks(path, sf_exc.cause))


def _resampled(path, blocks) -> np.ndarray:
    """The (rate, mono float32 block, expected frames) stream at 16 kHz:
    librosa.resample(res_type='soxr_hq', fix=True), i.e. soxr HQ trimmed or zero-padded
    to ceil(n * 16000 / rate) samples."""
    stream, rate, n_in, out = None, None, 0, None
    for sr, block, expected in blocks:
        if rate is None:
            rate = sr
            if not MIN_RATE <= sr <= MAX_RATE:
                # A damaged header can claim 1 Hz: resampling that to 16 kHz would need gigabytes.
                raise AudioError(path, f"unsupported sample rate ({sr} Hz)")
            if sr != SAMPLE_RATE:
                import soxr

                stream = soxr.ResampleStream(sr, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
            # At most MAX_HINT_S allocated up front: a damaged header can claim any length.
            out = _Samples(min(int(math.ceil(expected * SAMPLE_RATE / sr)) + 1024, MAX_HINT_S * SAMPLE_RATE) if expected else 0)
        n_in += len(block)
        _zero_non_finite(block)  # before resampling, or one NaN smears over the filter's length
        out.append(stream.resample_chunk(block) if stream is not None else block)
    if n_in == 0:
        raise AudioError(path, "no audio samples (0 frames)")
    if stream is not None:
        out.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    y = out.samples()
    n_out = int(math.ceil(n_in * (float(SAMPLE_RATE) / rate)))
    if len(y) > n_out:
        y = y[:n_out]
    elif len(y) < n_out:
        y = np.pad(y, (0, n_out - len(y)))
    # Damaged files can decode to finite garbage (1e37) that resampling overflows to inf.
    return _zero_non_finite(np.ascontiguousarray(y, dtype=np.float32))


class _Samples:
    """16 kHz blocks gathered into one array allocated once from the expected length (the
    header's), so the signal is not held twice while it is joined; a list past that."""

    def __init__(self, capacity: int):
        self.buffer = np.empty(capacity, dtype=np.float32)  # untouched pages cost no memory
        self.n = 0
        self.extra: list[np.ndarray] = []

    def append(self, block: np.ndarray) -> None:
        if not self.extra and self.n + len(block) <= len(self.buffer):
            self.buffer[self.n : self.n + len(block)] = block
            self.n += len(block)
        else:
            self.extra.append(block)

    def samples(self) -> np.ndarray:
        head = self.buffer[: self.n]
        return np.concatenate([head, *self.extra]) if self.extra else head


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


def _soundfile_blocks(path):
    """(rate, mono float32 block)s as librosa's soundfile path + to_mono reads them: float32
    frames, channels averaged in float32 (the mean over the (channels, n) view)."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            sr, channels, expected = f.samplerate, f.channels, f.frames
            # read() rather than blocks(): blocks() pads a short read (a truncated file)
            # to the header's frame count; read() returns what was decoded.
            while len(b := f.read(BLOCK_FRAMES, dtype="float32")):
                yield sr, (_downmix(b.T) if channels > 1 else b), expected
    except sf.LibsndfileError as exc:
        cause = exc.error_string.rstrip(".")
        if "not a regular file" in cause:
            # libsndfile says this of data its MPEG probe rejects; _check_file saw a regular file.
            cause = "Format not recognised"
        raise _SoundfileFailed(cause) from None
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError) as exc:
        raise _SoundfileFailed(str(exc)) from None


def _pyav_blocks(path, sf_cause: str):
    """(rate, mono float32 block)s of the first audio stream, decoded with PyAV; frames
    gathered into blocks of about BLOCK_FRAMES before they are resampled.

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
        expected = _expected_frames(stream, container)
        pending, n_pending, n_total, sr, last_error = [], 0, 0, None, None
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
                    mono = _frame_to_mono(frame)
                    pending.append(mono)
                    n_pending += len(mono)
                    if n_pending >= BLOCK_FRAMES:
                        n_total += n_pending
                        yield int(sr), np.concatenate(pending), expected
                        pending, n_pending = [], 0
        except av.FFmpegError as exc:  # demuxing itself failed: keep what was decoded
            last_error = exc
        except (ValueError, TypeError, NotImplementedError) as exc:  # a sample format PyAV cannot convert
            raise AudioError(path, f"cannot decode audio ({exc})") from None
    n_total += n_pending
    if n_total == 0:
        if last_error is not None:
            raise AudioError(path, f"cannot decode audio ({_av_message(last_error)})")
        raise AudioError(path, "no audio samples (0 frames)")
    if n_pending:
        yield int(sr), np.concatenate(pending), expected


def _expected_frames(stream, container) -> int | None:
    """The stream's length in frames as its container states it (None when it does not)."""
    try:
        if stream.duration is not None and stream.time_base is not None:
            return int(stream.duration * stream.time_base * stream.rate)
        if container.duration is not None:  # in microseconds
            return int(container.duration * stream.rate / 1_000_000)
    except (TypeError, ValueError, ZeroDivisionError):
        pass
    return None


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
    return _downmix(x) if channels > 1 else x[0]


def _downmix(x: np.ndarray) -> np.ndarray:
    """The mean of the channels of float32 x (channels, n), equal to x.mean(axis=0) (librosa's
    to_mono): below 8 channels numpy sums them one after the other, then divides by their count,
    and so does this, but without its strided reduction over an interleaved file's (n, channels)
    rows: 11 s of 44.1 kHz stereo 12.9 -> 0.7 ms (AMD EPYC Zen 3)."""
    if x.shape[0] >= 8:  # numpy's reduction sums 8 or more terms in an unrolled, pairwise order: keep its own
        return x.mean(axis=0, dtype=np.float32)
    out = np.add(x[0], x[1], dtype=np.float32)
    for row in x[2:]:
        out += row
    out /= np.float32(x.shape[0])
    return out


def _av_message(exc) -> str:
    return getattr(exc, "strerror", None) or str(exc)

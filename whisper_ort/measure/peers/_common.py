"""What every peer shares: the transcribe_record template, stage timers, audio and thread helpers.

A peer subclasses `Peer`, loads its models in `__init__` (timed into `load_s`) and
implements `_transcribe(path, record)`, filling the stage fields it can measure. The
template times the whole call into `t_total`, strips the text, derives rtf and
ms_per_token, and turns any exception into a `status="error"` record whose `error` is one
line naming the file: a bad file never raises.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from whisper_ort.measure.records import Record

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 30 * SAMPLE_RATE
EOT = 50257  # ids below this are text tokens; above are special and timestamp tokens


def offline_env() -> None:
    """No hub access, no tokenizer fork warnings, quiet transformers (before importing it)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    text = f"{exc.__class__.__name__}: {text}" if not text.startswith(exc.__class__.__name__) else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def count_text_tokens(ids) -> int:
    """Text tokens in a sequence of ids (no start/language/task/timestamp/end tokens)."""
    return int(sum(1 for i in ids if int(i) < EOT))


def set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(int(threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process (only allowed once)
        pass


def load_audio_librosa(path: str | Path):
    """librosa.load at 16 kHz mono, float32; raises on a file it cannot decode or an empty one."""
    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "PySoundFile failed. Trying audioread instead."
        try:
            audio, _ = librosa.load(str(path), sr=SAMPLE_RATE, mono=True)
        except Exception as exc:
            if str(exc).strip():
                raise
            # audioread's NoBackendError carries no message
            raise ValueError(f"cannot decode audio: neither soundfile nor audioread reads it ({exc.__class__.__name__})") from exc
    if audio.size == 0:
        raise ValueError("no audio samples decoded")
    return audio


def n_windows(n_samples: int) -> int:
    """30 s windows a sequential (non-overlapping) long-form decoder walks over."""
    return max(1, -(-n_samples // WINDOW_SAMPLES))


class TimedCall:
    """Stands in for a callable and adds the seconds of its calls to sink[key]."""

    def __init__(self, inner, sink: dict, key: str):
        self._inner, self._sink, self._key = inner, sink, key

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._inner(*args, **kwargs)
        finally:
            self._sink[self._key] = self._sink.get(self._key, 0.0) + time.perf_counter() - start

    def __getattr__(self, name):
        return getattr(self._inner, name)


class StageTimer:
    """Times an encoder and a decoder by wrapping their instances' `forward`.

    Works for torch modules (`module(...)` calls `self.forward`) and optimum's ORT parts
    alike. The first decoder call after each encoder call is the "first" step (it builds
    the cross-attention cache); the rest are the loop.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.encoder = 0.0
        self.decoder_first = 0.0
        self.decoder_loop = 0.0
        self.encoder_calls = 0
        self.decoder_calls = 0
        self._after_encoder = False

    @staticmethod
    def _timed(part, done) -> None:
        """Replace part.forward by a call that passes its elapsed seconds to done()."""
        inner = part.forward

        def forward(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                done(time.perf_counter() - start)

        part.forward = forward

    def wrap_encoder(self, part) -> None:
        def done(elapsed: float) -> None:
            self.encoder += elapsed
            self.encoder_calls += 1
            self._after_encoder = True

        self._timed(part, done)

    def wrap_decoder(self, part) -> None:
        def done(elapsed: float) -> None:
            if self._after_encoder or self.decoder_calls == 0:
                self.decoder_first += elapsed
            else:
                self.decoder_loop += elapsed
            self._after_encoder = False
            self.decoder_calls += 1

        self._timed(part, done)

    def fill(self, record: Record) -> None:
        if self.encoder_calls:
            record.t_encoder = self.encoder
        if self.decoder_calls:
            record.t_decoder_first = self.decoder_first
            record.t_decoder_loop = self.decoder_loop


class Peer:
    """Base class: load once, then `transcribe_record(path, repeat)` per file."""

    name = "peer"
    variant = "default"

    def __init__(self, onnx_dir, threads: int = 2, language: str = "en", task: str = "transcribe", max_new_tokens: int = 128, beam_size: int = 1,
                 own_process: bool = False):
        self.onnx_dir = Path(onnx_dir).resolve()
        # True in compare's worker, where this peer is all the process runs: a peer may then
        # take process-wide settings (whisper_ort: ONNX Runtime's one thread pool, as its CLI).
        self.own_process = bool(own_process)
        self.beam_size = int(beam_size)
        self.threads = int(threads)
        self.language = language
        self.task = task
        self.max_new_tokens = int(max_new_tokens)
        start = time.perf_counter()
        self._load()
        self.load_s = time.perf_counter() - start

    # -- to implement
    def _load(self) -> None:
        raise NotImplementedError

    def _transcribe(self, path: Path, record: Record) -> None:
        """Fill text, n_tokens, duration_s and the stage fields it can measure."""
        raise NotImplementedError

    # -- shared
    def info(self) -> dict:
        """What this peer is, for the summary (settings and model files)."""
        return {"implementation": self.name, "variant": self.variant, "threads": self.threads, "beam_size": self.beam_size}

    def transcribe_record(self, path, repeat: int = 0) -> Record:
        path = Path(path)
        record = Record(file=path.name, implementation=self.name, variant=self.variant, threads=self.threads, beam_size=self.beam_size,
                        repeat=int(repeat), language=self.language)
        start = time.perf_counter()
        try:
            if not path.is_file():
                raise FileNotFoundError("no such file")
            self._transcribe(path, record)
        except Exception as exc:  # a bad file is a record, never an exception
            record.status = "error"
            record.error = f"{path.name}: {one_line(exc)}"
            record.text = ""
            record.t_total = time.perf_counter() - start
            return record
        record.t_total = time.perf_counter() - start
        record.text = record.text.strip()
        return record.finish()

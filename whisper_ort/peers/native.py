"""This package's own pipeline behind the peer interface, so compare runs it like the others.

`whisper_ort.pipeline.Transcriber(onnx_dir, threads=N)`; its `transcribe_record` when it
has one, else a record built from `transcribe()`'s result (text, tokens, duration_s,
timings, n_windows, flags).
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

from ..records import Record
from ._common import EOT, Peer, one_line


class WhisperOrtPeer(Peer):
    name = "whisper_ort"
    variant = "default"

    def _load(self) -> None:
        from ..pipeline import Transcriber  # imported here: the registry must not need it

        # shared_pool: as the CLI runs it (this worker process holds no other ONNX Runtime session).
        wanted = {"threads": self.threads, "language": self.language, "task": self.task, "max_new_tokens": self.max_new_tokens, "shared_pool": True}
        try:
            params = inspect.signature(Transcriber).parameters
            takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
            kwargs = {k: v for k, v in wanted.items() if takes_any or k in params}
        except (TypeError, ValueError):
            kwargs = {"threads": self.threads}
        self.transcriber = Transcriber(self.onnx_dir, **kwargs)

    def info(self) -> dict:
        info = super().info()
        for attr in ("settings", "info", "describe"):
            method = getattr(self.transcriber, attr, None)
            if callable(method):
                try:
                    info["settings"] = method()
                except Exception as exc:  # the summary should not fail on a description
                    info["settings_error"] = one_line(exc)
                break
        return info

    def transcribe_record(self, path, repeat: int = 0) -> Record:
        method = getattr(self.transcriber, "transcribe_record", None)
        if callable(method):
            start = time.perf_counter()
            try:
                record = method(path, repeat=repeat)
            except Exception as exc:  # the contract: a bad file is a record, never an exception
                name = Path(path).name
                return Record(file=name, implementation=self.name, variant=self.variant, threads=self.threads, repeat=int(repeat), status="error", error=f"{name}: {one_line(exc)}", t_total=time.perf_counter() - start)
            record.implementation = self.name
            record.threads = record.threads or self.threads
            if record.status != "ok" and record.error and Path(path).name not in record.error:
                record.error = f"{Path(path).name}: {record.error}"
            return record
        return super().transcribe_record(path, repeat)

    def _transcribe(self, path: Path, record: Record) -> None:
        result = self.transcriber.transcribe(str(path))
        record.text = result.text
        tokens = list(getattr(result, "tokens", []) or [])
        record.n_tokens = sum(1 for t in tokens if int(t) < EOT)
        record.duration_s = getattr(result, "duration_s", None)
        record.language = getattr(result, "language", None) or record.language
        record.n_windows = getattr(result, "n_windows", None)
        record.flags = list(getattr(result, "flags", []) or [])
        timings = dict(getattr(result, "timings", {}) or {})
        for key in ("t_load_audio", "t_features", "t_encoder", "t_decoder_first", "t_decoder_loop", "t_detokenize"):
            if timings.get(key) is not None:
                setattr(record, key, float(timings[key]))

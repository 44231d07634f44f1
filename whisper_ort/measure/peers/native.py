"""This package's own pipeline behind the peer interface, so compare runs it like the others:
`Transcriber` with the CLI's defaults (in compare's worker, the shared thread pool too),
records by measure/bench.py."""

from __future__ import annotations

from whisper_ort.measure.records import Record

from ._common import Peer


class WhisperOrtPeer(Peer):
    name = "whisper_ort"
    variant = "auto"

    def _load(self) -> None:
        from whisper_ort.core.decoding import DecodingOptions
        from whisper_ort.core.pipeline import Transcriber  # imported here: the registry must not need it

        # Alone in its process (compare's worker): the CLI's one thread pool. In a caller's
        # process (a test, a notebook) a pool per session, the library's default, since ONNX
        # Runtime's global pool would refuse the caller's other sessions.
        self.transcriber = Transcriber(self.onnx_dir, threads=self.threads, shared_pool=self.own_process)
        self.variant = self.transcriber.variant
        self.options = DecodingOptions(language=self.language, task=self.task, max_new_tokens=self.max_new_tokens,
                                       beam_size=self.beam_size if self.beam_size > 1 else None)

    def info(self) -> dict:
        return {**super().info(), "settings": self.transcriber.settings(self.options)}

    def transcribe_record(self, path, repeat: int = 0) -> Record:
        from whisper_ort.measure.bench import record_of

        record = record_of(self.transcriber, path, self.options, repeat=repeat)
        record.implementation = self.name
        record.beam_size = self.beam_size
        return record

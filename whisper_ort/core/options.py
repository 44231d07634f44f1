"""Model-level settings, fixed when a Transcriber is built (decoding settings are per call:
core/decoding.py DecodingOptions)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from whisper_ort.core.session import SessionConfig


@dataclass(frozen=True)
class ModelOptions:
    """Which model folder and variant, and how ONNX Runtime runs it.

    folder: None looks it up (core/folder.py default_model_dir: $WHISPER_ORT_MODEL_DIR,
    ./whisper-base-with-past, the checkout's, ~/.cache/whisper-ort/...).
    variant: "auto" (mha when built, else the export), "export" or "mha".
    session: threads, thread pool, arena, prepacking... (core/session.py SessionConfig).
    """

    folder: str | Path | None = None
    variant: str = "auto"
    tokenizer_json: str | Path | None = None
    session: SessionConfig = field(default_factory=SessionConfig)

    def with_overrides(self, **overrides) -> ModelOptions:
        """These options with some fields changed, session fields (threads=4) included."""
        session_names = {f.name for f in fields(SessionConfig)}
        own = {k: v for k, v in overrides.items() if k not in session_names}
        unknown = set(own) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown model option(s): {', '.join(sorted(unknown))}")
        session = {k: v for k, v in overrides.items() if k in session_names}
        return replace(self, **own, session=replace(self.session, **session) if session else self.session)

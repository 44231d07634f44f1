"""Each peer transcribes jfk.flac into the package's record; a bad file is an error record, never an exception."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from whisper_ort.measure.peers import IMPLEMENTATIONS, PEERS, available, create
from whisper_ort.measure.records import RECORD_FIELDS, Record

pytestmark = pytest.mark.peers

REPO = Path(__file__).resolve().parents[1]
JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
THREADS = 2


@pytest.fixture(scope="module", params=PEERS)
def peer(request, model_dir):
    """Each peer loaded once for this module (loading takes seconds)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    if not available(request.param):
        pytest.skip(f"{request.param}: its packages are not installed")
    return create(request.param, model_dir, threads=THREADS)


def test_registry_lists_every_implementation():
    assert set(PEERS) | {"whisper_ort"} == set(IMPLEMENTATIONS)


def test_registry_import_does_not_import_torch():
    code = "import sys, whisper_ort.measure.peers, whisper_ort.measure.compare; print(sorted(m for m in ('torch', 'transformers', 'faster_whisper', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_transcribes_jfk(peer, audio_dir):
    record = peer.transcribe_record(audio_dir / "jfk.flac", repeat=0)
    assert isinstance(record, Record)
    assert record.status == "ok", record.error
    assert record.text == JFK
    assert record.n_tokens > 0
    assert record.implementation == peer.name
    assert record.threads == THREADS
    assert record.file == "jfk.flac"
    assert record.duration_s == pytest.approx(11.0, abs=0.05)
    assert record.t_total > 0 and record.rtf == pytest.approx(record.t_total / record.duration_s)
    assert record.t_encoder is not None and record.t_encoder > 0
    assert set(record.to_dict()) == set(RECORD_FIELDS)
    assert peer.load_s > 0


def test_bad_file_is_an_error_record(peer, tmp_path):
    bad = tmp_path / "noise_bytes.wav"
    bad.write_bytes(os.urandom(4096))
    record = peer.transcribe_record(bad, repeat=1)
    assert record.status == "error"
    assert "noise_bytes.wav" in record.error
    assert "\n" not in record.error
    assert record.text == "" and record.repeat == 1 and record.implementation == peer.name


def test_missing_file_is_an_error_record(peer, tmp_path):
    record = peer.transcribe_record(tmp_path / "nowhere.flac")
    assert record.status == "error" and "nowhere.flac" in record.error


def test_faster_whisper_decodes_max_new_tokens(model_dir, audio_dir):
    """CTranslate2 halves Whisper's max_length; the peer corrects for it so the cap is the one asked for."""
    if not available("faster_whisper"):
        pytest.skip("faster-whisper is not installed")
    capped = create("faster_whisper", model_dir, threads=THREADS, max_new_tokens=10)
    record = capped.transcribe_record(audio_dir / "jfk.flac")  # 25 tokens uncapped
    assert record.status == "ok" and record.n_tokens == 10
    assert "max_new_tokens" in record.flags


def test_worker_protocol_keeps_stdout_clean(model_dir, audio_dir):
    """The worker answers one JSON line per command and nothing else on stdout."""
    if not available("faster_whisper"):
        pytest.skip("faster-whisper is not installed")
    proc = subprocess.run(
        [sys.executable, "-m", "whisper_ort.measure.peers.worker", "--implementation", "faster_whisper", "--onnx-dir", str(model_dir), "--threads", str(THREADS)],
        input=f"run {audio_dir / 'jfk.flac'} 0\nbogus\nquit\n",
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    messages = [json.loads(line) for line in proc.stdout.splitlines()]  # every line is JSON
    assert [m["event"] for m in messages] == ["ready", "record", "error", "bye"]
    assert messages[0]["load_s"] > 0 and messages[0]["info"]["implementation"] == "faster_whisper"
    assert messages[1]["record"]["text"] == JFK
    assert messages[3]["hwm_mb"] > 0

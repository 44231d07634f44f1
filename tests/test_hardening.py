"""Faults and interruptions lose nothing: Ctrl-C, full disk, unwritable outputs, no network, loops."""

from __future__ import annotations

import csv
import errno
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import JFK_TEXT, REPO


def _bench_cmd(audio_dir, model_dir, out, *extra):
    return [sys.executable, "-m", "whisper_ort.cli", "bench", "--audio-dir", str(audio_dir), "--onnx-dir", str(model_dir),
            "--output-dir", str(out), "--warmup", "0", "--no-progress", "--max-new-tokens", "24", *extra]


def _valid_outputs(out):
    records = json.loads((out / "inference_per_file.json").read_text())
    with open(out / "inference_per_file.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [r["file"] for r in records]
    json.loads((out / "inference_summary.json").read_text())
    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"
    return records


@pytest.mark.slow
def test_ctrl_c_keeps_finished_records_and_resume_completes(tmp_path, audio_dir, model_dir):
    out = tmp_path / "out"
    cmd = _bench_cmd(audio_dir, model_dir, out, "--files", "lj_*.wav")
    # SIGINT's default action in the child, as in a terminal: a shell that starts pytest in the
    # background (`make test &`) hands it SIGINT ignored, and every child would inherit that.
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "inference_per_file.json").is_file():
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr and "--resume" in stderr
    done = _valid_outputs(out)
    assert 1 <= len(done) < 4

    resumed = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    records = _valid_outputs(out)
    assert sorted(r["file"] for r in records) == sorted(p.name for p in audio_dir.glob("lj_*.wav"))
    assert records[: len(done)] == done  # finished records kept as they were


def test_full_disk_keeps_the_last_complete_files(tmp_path, audio_dir, model_dir, monkeypatch):
    """A write that fails half-way (ENOSPC) leaves the previous complete files, never a torn one."""
    import whisper_ort.core.writers as records_mod  # write_atomic: every output file
    from whisper_ort.core.decoding import DecodingOptions
    from whisper_ort.core.options import ModelOptions
    from whisper_ort.measure.bench import run_bench

    out = tmp_path / "out"
    calls = {"n": 0}
    real_fsync = records_mod.os.fsync

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > 3:  # the first file's json, csv and summary succeed; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(records_mod.os, "fsync", fsync)
    with pytest.raises(OSError, match="No space left"):
        run_bench(audio_dir=audio_dir, model=ModelOptions(folder=model_dir), decoding=DecodingOptions(max_new_tokens=16), output_dir=out,
                  files="lj_LJ001-000[24].wav", warmup=0, progress=False)
    monkeypatch.setattr(records_mod.os, "fsync", real_fsync)
    records = _valid_outputs(out)
    assert [r["file"] for r in records] == ["lj_LJ001-0002.wav"]


def test_unwritable_output_folder_is_one_line(tmp_path, audio_dir, model_dir):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = subprocess.run(_bench_cmd(audio_dir, model_dir, blocker / "out", "--files", "jfk.flac"), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("whisper-ort: error:") and "Traceback" not in proc.stderr


BLOCK_NETWORK = """
import socket
class NoNetwork(socket.socket):
    def connect(self, *a, **k):
        raise OSError("network blocked by the test")
    connect_ex = connect
socket.socket = NoNetwork
socket.create_connection = lambda *a, **k: (_ for _ in ()).throw(OSError("network blocked by the test"))
"""


def test_pipeline_runs_with_sockets_blocked(tmp_path, audio_dir, model_dir):
    (tmp_path / "sitecustomize.py").write_text(BLOCK_NETWORK)
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "whisper_ort.cli", "transcribe", str(audio_dir / "jfk.flac"), "--onnx-dir", str(model_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == JFK_TEXT


def test_no_pickle_or_torch_load_on_user_files():
    """Nothing in the package unpickles what a user hands it."""
    sources = "\n".join(p.read_text() for p in (REPO / "whisper_ort").rglob("*.py"))
    for banned in ("pickle.load", "torch.load(", "np.load(", "allow_pickle=True"):
        assert banned not in sources, banned


@pytest.mark.slow
def test_silence_and_noise_stop_and_loops_are_cut(transcriber):
    rng = np.random.default_rng(0)
    for samples in (np.zeros(16000 * 30, np.float32), (0.1 * rng.standard_normal(16000 * 30)).astype(np.float32)):
        result = transcriber.transcribe(samples)
        assert len(result.tokens) <= 128
    tone = (0.3 * np.sin(np.arange(16000 * 30) * 2 * np.pi * 440 / 16000)).astype(np.float32)
    result = transcriber.transcribe(tone, max_new_tokens=64)
    assert len(result.tokens) <= 64


def test_repetition_guard_units():
    from whisper_ort.core.decoding import compression_ratio, repeated_tail

    assert repeated_tail([5] * 12, 12) == 11
    assert repeated_tail([1, 2] * 12, 12) == 22
    assert repeated_tail([1, 2, 3] * 11, 12) == 0
    assert repeated_tail(list(range(50)), 12) == 0
    assert compression_ratio("you you you you " * 20) > 2.4
    assert compression_ratio("And so my fellow Americans, ask not what your country can do for you") < 2.4

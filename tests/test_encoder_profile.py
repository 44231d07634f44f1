"""measure/encoder_profile.py: ORT's node profile of the real encoder, grouped by kind of node."""

from __future__ import annotations

import pytest

from whisper_ort.core.audio import load_audio
from whisper_ort.core.features import log_mel_batch
from whisper_ort.measure import encoder_profile, hardware


@pytest.mark.slow
def test_profile_groups_every_node_and_counts_the_graphs_flops(transcriber, audio_dir):
    mel = log_mel_batch([load_audio(audio_dir / "jfk.flac")])
    result = encoder_profile.profile(transcriber.model_dir, mel, threads=2, runs=2)
    kinds = {(r["kind"], r["op"]): r for r in result["kinds"]}
    assert kinds[("/layers.L/fc1/MatMul", "MatMul")]["nodes"] == 6  # one kind, the six layers
    assert sum(r["ms"] for r in result["kinds"]) == pytest.approx(result["total_ms"])
    ops = {o["op"]: o for o in encoder_profile.by_op(result)}
    graph = hardware.onnx_matmul_flops(transcriber.model_dir / "encoder_model.onnx", {"input_features": list(mel.shape)})
    assert (ops["MatMul"]["gflop"] + ops["Conv"]["gflop"]) * 1e9 == pytest.approx(graph["total"])
    assert ops["MultiHeadAttention"]["nodes"] == 6 and ops["MultiHeadAttention"]["gflops"] > 0
    assert sum(o["share"] for o in ops.values()) == pytest.approx(1.0)


def test_missing_audio_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        encoder_profile.main(["--audio-dir", str(tmp_path), "--file", "nope.flac", "--runs", "1"])
    assert "nope.flac" in str(exc.value)

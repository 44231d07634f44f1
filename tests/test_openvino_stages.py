"""measure/openvino_stages.py: OpenVINO runs our own encoder and decoder graphs to the same
numbers as ONNX Runtime (so its timings compare like with like), and the OpenVINO plugin EP
either is timed or says why not. Run as the command, in its own process: the plugin EP
brings its own copy of OpenVINO's libraries, which stay out of the test process."""

from __future__ import annotations

import json
import subprocess
import sys


def test_openvino_computes_our_graphs_as_onnx_runtime_does(model_dir, audio_dir, tmp_path):
    out = tmp_path / "stages.json"
    run = subprocess.run([sys.executable, "-m", "whisper_ort.measure.openvino_stages", "--audio-dir", str(audio_dir),
                          "--file", "jfk.flac", "--onnx-dir", str(model_dir), "--rounds", "1", "--output", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result["stages"]) == {"encoder", "decoder_step"}
    for stage, runners in result["stages"].items():
        assert {"ort_cpu", "openvino"} <= set(runners), stage
        assert ("ort_openvino_ep" in runners) == (result["ort_openvino_ep"] == "timed")
        for name, r in runners.items():
            assert r["median_s"] > 0, (stage, name)
            assert r["max_abs_diff"] < 1e-2, (stage, name, r["max_abs_diff"])  # FP32 both; a wrong input order is ~1
    assert result["ort_openvino_ep"]  # "timed", or why not

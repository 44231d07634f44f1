"""FLOP and byte counts of whisper-base, the graph counter, and the peak measurements (no speed thresholds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from whisper_ort.measure import hardware

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "whisper-base-with-past"


def test_encoder_flops_from_the_dims():
    f = hardware.encoder_flops()
    # conv1 80->512 k3 over 3000 frames, conv2 512->512 k3 s2 -> 1500, 6 layers of QKV,
    # scores, values, out projection and FFN 512->2048->512; 2 FLOPs per multiply-add.
    t, d = 1500, 512
    macs = 80 * 3 * d * 3000 + d * 3 * d * t + 6 * (3 * t * d * d + 2 * t * t * d + t * d * d + 2 * t * d * 2048)
    assert f["total"] == 2 * macs == 87_367_680_000
    assert 80e9 < f["total"] < 95e9
    assert f["total"] == sum(v for k, v in f.items() if k != "total")
    assert f["ffn"] > f["attn_qkv"] > f["conv2"] > f["conv1"]


def test_decoder_step_bytes():
    b = hardware.decoder_step_bytes(position=0)
    assert b["output_projection"] == 51865 * 512 * 4
    assert b["cross_kv"] == 6 * 2 * 1500 * 512 * 4
    assert b["layers"] == 6 * (6 * 512 * 512 + 2 * 512 * 2048) * 4
    assert b["self_kv"] == 0
    assert 200e6 < b["total"] < 260e6  # docs/DESIGN.md: ~240 MB per step
    assert hardware.decoder_step_bytes(position=100)["self_kv"] == 6 * 2 * 100 * 512 * 4


def test_model_config_reads_the_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"d_model": 384, "encoder_layers": 4, "vocab_size": 51865, "other": 1}))
    cfg = hardware.model_config(tmp_path)
    assert cfg["d_model"] == 384 and cfg["encoder_layers"] == 4 and cfg["decoder_layers"] == 6
    assert hardware.encoder_flops(cfg)["total"] < hardware.encoder_flops()["total"]
    assert hardware.model_config(tmp_path / "missing") == hardware.WHISPER_BASE


def _tiny_graph(path: Path) -> int:
    """MatMul (2x3x4 @ 4x5), Conv (1x2x10, 3 filters k3 pad 1) and Gemm (6x4 @ 4x7); their FLOPs."""
    from onnx import TensorProto, helper, numpy_helper, save

    w = numpy_helper.from_array(np.ones((4, 5), np.float32), "W")
    k = numpy_helper.from_array(np.ones((3, 2, 3), np.float32), "K")
    g = numpy_helper.from_array(np.ones((4, 7), np.float32), "G")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["A", "W"], ["Y1"]),
            helper.make_node("Conv", ["X", "K"], ["Y2"], pads=[1, 1]),
            helper.make_node("Gemm", ["B", "G"], ["Y3"]),
        ],
        "tiny",
        [
            helper.make_tensor_value_info("A", TensorProto.FLOAT, ["batch", 3, 4]),
            helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2, 10]),
            helper.make_tensor_value_info("B", TensorProto.FLOAT, [6, 4]),
        ],
        [
            helper.make_tensor_value_info("Y1", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("Y2", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("Y3", TensorProto.FLOAT, None),
        ],
        initializer=[w, k, g],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return 2 * (2 * 3 * 5 * 4) + 2 * (3 * 10 * 2 * 3) + 2 * (6 * 7 * 4)


def test_onnx_matmul_flops_on_a_tiny_graph(tmp_path):
    expected = _tiny_graph(tmp_path / "tiny.onnx")
    counts = hardware.onnx_matmul_flops(tmp_path / "tiny.onnx", {"A": [2, 3, 4]})
    assert counts["total"] == expected
    assert counts["nodes"] == 3
    assert counts["Conv"] == 2 * 3 * 10 * 2 * 3


@pytest.mark.slow
def test_onnx_graph_count_matches_the_dims():
    encoder = MODEL_DIR / "encoder_model.onnx"
    if not encoder.is_file():
        pytest.skip(f"no {encoder} (make model)")
    counts = hardware.onnx_matmul_flops(encoder, {"input_features": [1, 80, 3000]})
    assert counts["total"] == hardware.encoder_flops(hardware.model_config(MODEL_DIR))["total"]


def test_measured_peaks_are_positive_numbers():
    gemm = hardware.measure_gemm_ort(1, shapes={"small": (64, 128, 96)}, repeats=2, passes=1)
    assert gemm["small"]["gflops"] > 0 and gemm["small"]["best_s"] > 0
    numpy_gemm = hardware.measure_gemm_numpy(1, shapes={"small": (64, 128, 96)}, repeats=2)
    assert numpy_gemm["small"]["gflops"] > 0
    bw = hardware.measure_bandwidth(1, size_mib=8, repeats=2)
    for way in ("numpy_sum", "ort_reduce_sum", "ort_gemv"):
        assert bw[way]["gbs"] > 0


def test_gemm_peak_is_the_best_of_every_pass(monkeypatch):
    """A busy spell that covers one round over the shapes does not set the peak: each shape
    keeps its best time over the passes."""
    times = iter([0.04, 0.08, 0.01, 0.02, 0.03, 0.16])  # (a, b) in pass 1, 2, 3
    monkeypatch.setattr(hardware, "_best_of", lambda run, repeats: next(times))
    gemm = hardware.measure_gemm_ort(1, shapes={"a": (8, 8, 8), "b": (16, 16, 16)}, repeats=2, passes=3, pause_s=0)
    assert (gemm["a"]["best_s"], gemm["b"]["best_s"]) == (0.01, 0.02)
    assert gemm["b"]["gflops"] == pytest.approx(2 * 16**3 / 0.02 / 1e9)


def _fake_floors(threads: int) -> dict:
    gemm = {"encoder_ffn1_1500x512x2048": {"m": 1500, "k": 512, "n": 2048, "best_s": 0.02, "gflops": 150.0}, "square_2048": {"m": 2048, "k": 2048, "n": 2048, "best_s": 0.1, "gflops": 175.0}}
    bw = {"size_bytes": 1, "numpy_sum": {"best_s": 1, "gbs": 20.0}, "ort_reduce_sum": {"best_s": 1, "gbs": 30.0}, "ort_gemv": {"best_s": 1, "gbs": 25.0, "k": 512, "n": 1}}
    return hardware.derive(threads, gemm, gemm, bw)


def test_derive_floors():
    f = _fake_floors(2)
    assert f["gemm_peak_gflops"] == 175.0 and f["gemm_encoder_shapes_gflops"] == 150.0
    assert f["bandwidth_gbs"] == 30.0
    assert f["encoder_floor_s"] == pytest.approx(87.36768 / 175.0)
    assert f["decoder_step_floor_s"] == pytest.approx(f["decoder_step_bytes"]["total"] / 30e9)
    assert f["decoder_first_floor_s"] >= f["decoder_first_flops"]["total"] / 175e9
    assert "175.0 GFLOP/s" in hardware.describe(f)


def test_floors_are_cached_per_thread_count(tmp_path, monkeypatch):
    calls = []

    def fake_measure(threads, **kwargs):
        calls.append(threads)
        return _fake_floors(threads)

    monkeypatch.setattr(hardware, "measure", fake_measure)
    cache = tmp_path / "hardware.json"
    first = hardware.floors(2, cache=cache)
    again = hardware.floors(2, cache=cache)
    hardware.floors(1, cache=cache)
    assert calls == [2, 1]
    assert first == again
    hardware.floors(2, cache=cache, refresh=True)
    assert calls == [2, 1, 2]
    stored = hardware.load_floors(cache)
    assert sorted(stored) == [1, 2] and stored[2]["threads"] == 2
    assert list(json.loads(cache.read_text())["by_threads"]) == ["1", "2"]
    assert hardware.load_floors(tmp_path / "none.json") == {}


ZEN4 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.144\nflags\t\t: fpu sse avx2 fma avx512f avx512_bf16\n"
XEON = "vendor_id\t: GenuineIntel\ncpu family\t: 6\nflags\t\t: sse avx2 fma avx512f amx_tile amx_bf16\n"


def test_vector_units_from_cpuinfo():
    zen4 = hardware.vector_units(ZEN4)
    assert (zen4["isa"], zen4["fma_bits"], zen4["fp32_flops_per_cycle"], zen4["nominal_mhz"]) == ("AVX-512", 256, 32, 2596.144)
    assert hardware.vector_units(ZEN4.replace(": 25", ": 26"))["fp32_flops_per_cycle"] == 64  # Zen 5: full-width pipes
    xeon = hardware.vector_units(XEON)
    assert xeon["fp32_flops_per_cycle"] == 64 and xeon["amx"] and xeon["nominal_mhz"] is None
    assert hardware.vector_units("flags\t: sse avx2 fma\n")["fp32_flops_per_cycle"] == 32
    assert hardware.vector_units("")["isa"] == "SSE"


def test_units_sentence_states_the_implied_clock():
    f = {"threads": 2, "implied_ghz": 231.4 / 64, "vector_units": hardware.vector_units(ZEN4)}
    text = hardware.units_sentence(f)
    assert "2 x 256-bit FMA" in text and "32 FP32 FLOPs a cycle" in text and "3.62 GHz" in text and "2 thread(s)" in text and "2596 MHz" in text
    assert hardware.units_sentence({"threads": 2}) == ""  # a hardware.json from before

"""The offline export: CTranslate2 reader, name mapping, configs, manifest checks."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from whisper_ort.build import export
from whisper_ort.build.ct2 import CT2FormatError, read_ct2_model


def write_ct2(path, variables: dict, aliases: dict | None = None, version: int = 6):
    """A model.bin as ctranslate2's `_serialize` writes it."""
    dtype_ids = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}

    def string(s):
        return struct.pack("H", len(s) + 1) + s.encode() + b"\0"

    out = struct.pack("I", version) + string("WhisperSpec") + struct.pack("I", 3) + struct.pack("I", len(variables))
    for name, value in variables.items():
        value = np.asarray(value)
        out += string(name) + struct.pack("B", value.ndim) + b"".join(struct.pack("I", d) for d in value.shape)
        out += struct.pack("B", dtype_ids[str(value.dtype)]) + struct.pack("I", value.nbytes) + value.tobytes()
    aliases = aliases or {}
    out += struct.pack("I", len(aliases)) + b"".join(string(a) + string(t) for a, t in aliases.items())
    path.write_bytes(out)


def test_reader_round_trip(tmp_path):
    variables = {"a/weight": np.arange(6, dtype=np.float16).reshape(2, 3), "a/flag": np.int8(3), "n": np.int16(8)}
    write_ct2(tmp_path / "m.bin", variables, {"b/weight": "a/weight"})
    spec, got, aliases = read_ct2_model(tmp_path / "m.bin")
    assert spec == "WhisperSpec" and aliases == {"b/weight": "a/weight"}
    np.testing.assert_array_equal(got["a/weight"], variables["a/weight"])
    assert got["a/weight"].dtype == np.float16 and int(got["a/flag"]) == 3


def test_reader_rejects_truncated_and_trailing(tmp_path):
    write_ct2(tmp_path / "m.bin", {"a": np.ones(4, np.float32)})
    data = (tmp_path / "m.bin").read_bytes()
    (tmp_path / "short.bin").write_bytes(data[:-8])
    with pytest.raises(CT2FormatError, match="truncated"):
        read_ct2_model(tmp_path / "short.bin")
    (tmp_path / "long.bin").write_bytes(data + b"xx")
    with pytest.raises(CT2FormatError, match="trailing"):
        read_ct2_model(tmp_path / "long.bin")


@pytest.fixture(scope="module")
def ct2_variables(tmp_path_factory):
    work = tmp_path_factory.mktemp("ct2")
    path = export.reassemble_model_bin(work)  # checks the sha256 as it writes
    return read_ct2_model(path)[1]


def test_every_variable_maps_to_a_hf_name(ct2_variables):
    mapped = export.map_ct2_to_hf(ct2_variables)
    assert all(v.dtype == np.float32 for v in mapped.values())
    assert mapped["model.decoder.embed_tokens.weight"].shape == (51865, 512)
    assert mapped["model.encoder.layers.5.self_attn.k_proj.weight"].shape == (512, 512)
    assert "model.encoder.layers.0.self_attn.k_proj.bias" not in mapped
    # q, k, v come out of the fused matrix in that order.
    fused = ct2_variables["encoder/layer_0/self_attention/linear_0/weight"].astype(np.float32)
    np.testing.assert_array_equal(mapped["model.encoder.layers.0.self_attn.v_proj.weight"], fused[1024:])


def test_unmapped_or_missing_variables_fail_loudly(ct2_variables):
    extra = dict(ct2_variables, **{"decoder/mystery/weight": np.zeros(2, np.float16)})
    with pytest.raises(export.ExportError, match="unmapped: decoder/mystery/weight"):
        export.map_ct2_to_hf(extra)
    short = {k: v for k, v in ct2_variables.items() if k != "decoder/layer_3/ffn/linear_1/bias"}
    with pytest.raises(export.ExportError, match="no variable decoder/layer_3/ffn/linear_1/bias"):
        export.map_ct2_to_hf(short)


def test_generation_config_is_complete(model_dir):
    gen = json.loads((model_dir / "generation_config.json").read_text())
    assert gen["decoder_start_token_id"] == 50258 and gen["eos_token_id"] == 50257
    assert gen["no_timestamps_token_id"] == 50363 and gen["max_length"] == 448
    assert gen["task_to_id"] == {"transcribe": 50359, "translate": 50358}
    assert gen["lang_to_id"]["<|en|>"] == 50259 and len(gen["lang_to_id"]) == 99
    assert gen["begin_suppress_tokens"] == [220, 50257] and 50362 in gen["suppress_tokens"]


def test_built_folders_match_their_manifests(model_dir):
    for name in export.ONNX_FILES + export.CONFIG_FILES:
        assert (model_dir / name).is_file(), name
    assert export.check_manifest(model_dir, deep=False) == []
    assert export.check_manifest(export.hf_folder(model_dir), deep=False) == []
    assert (export.hf_folder(model_dir) / "model.safetensors").is_file()


def test_manifest_finds_damage(tmp_path):
    (tmp_path / "a.onnx").write_bytes(b"12345678")
    export.write_manifest(tmp_path)
    assert export.check_manifest(tmp_path) == []
    (tmp_path / "a.onnx").write_bytes(b"12345670")
    assert "sha256 differs" in export.check_manifest(tmp_path)[0]
    (tmp_path / "a.onnx").write_bytes(b"1234")
    assert "size" in export.check_manifest(tmp_path, deep=False)[0]
    (tmp_path / "a.onnx").unlink()
    assert "missing" in export.check_manifest(tmp_path)[0]


def test_skip_layer_norm_rewrite_computes_the_same(tmp_path):
    """decompose_skip_layer_norms: the plain-op LayerNorm gives SkipLayerNormalization's
    output and residual sum, with and without the bias input; no fused node is left."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from whisper_ort.build.optimize import decompose_skip_layer_norms

    rng = np.random.default_rng(0)
    d = 16
    inits = [numpy_helper.from_array(rng.standard_normal(d).astype(np.float32) + 1, n) for n in ("gamma", "beta", "bias")]
    nodes = [
        helper.make_node("SkipLayerNormalization", ["x", "s", "gamma", "beta", "bias"], ["y1", "", "", "sum1"], domain="com.microsoft", epsilon=1e-5),
        helper.make_node("SkipLayerNormalization", ["y1", "sum1", "gamma", "beta"], ["y2"], domain="com.microsoft", epsilon=1e-5),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 5, d]) for n in ("x", "s")],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y2", "sum1")], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    feeds = {"x": rng.standard_normal((2, 5, d)).astype(np.float32) * 3, "s": rng.standard_normal((2, 5, d)).astype(np.float32)}
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    assert decompose_skip_layer_norms(model) == 2
    assert not any(n.op_type == "SkipLayerNormalization" for n in model.graph.node)
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)

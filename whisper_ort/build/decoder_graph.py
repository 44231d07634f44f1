"""A decoder graph written for the token loop, and an encoder that hands it cross K/V.

The optimum export's decoder spends about a quarter of each token step outside its
matrix products: ~300 small Shape/Gather/Unsqueeze/Concat/Reshape/Transpose nodes
around each attention, plus the merged decoder's If node (measured with ONNX Runtime's
profiler, notes in RESULTS.md). This module writes the same arithmetic from the
weights, around com.microsoft MultiHeadAttention:

- encoder: the fused encoder plus, per decoder layer, the MatMuls that project its
  output to that layer's cross-attention keys and values, laid out as the decoder reads
  them: keys (B, 8, 1500, 64), values (B, 8, 64, 1500). The first decoder step no longer
  projects them.
- decoder: one graph for the prompt (T tokens, empty past) and for each later token
  (T = 1): per layer a fused QKV MatMul, MultiHeadAttention with past/present K/V
  (unidirectional), MatMul/Softmax over the cached cross K/V, SkipLayerNormalization
  for every residual + norm, BiasGelu. No If node. For the last position only, no FP32
  output projection but bounded logits (_bounded_head): int8 rows and an error bound,
  and the few tokens that can still be the argmax, which the caller scores exactly.
- token embeddings are looked up outside the graph, row by row from `embed_tokens.npy`
  (model.EmbeddingRows). Inside, the table would be needed twice: as is for the lookup
  and prepacked for the output projection; with only the projection reading it, ONNX
  Runtime drops the memory-mapped original after prepacking: 104 MB less RSS.

Two exact rewrites keep it small: the V projections' biases move into the output
projections' biases (softmax rows sum to one, so attention(V + b) = attention(V) + b),
and the key projections have no bias in Whisper. Tokens are checked equal to the
reference by tests/test_variants.py and tests/test_fidelity.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from whisper_ort.core.folder import (
    ALIGNMENT_OUTPUTS,
    CROSS_LAYOUT,
    CROSS_ROWS,
    HEAD_LOG_PROBS,
    HEAD_POSITIONS,
    MHA_HEAD_OUTPUTS,
)

HEADS = 8
EXACT_DIMS = 32  # hidden dimensions the approximate logits keep in FP32 (the largest |gamma|)


def _load_weights(hf_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return {k.removeprefix("model."): v.astype(np.float32) for k, v in load_file(str(hf_dir / "model.safetensors")).items()}


def _folded_bias(w: dict, prefix: str) -> np.ndarray:
    """out_proj bias + v_proj bias pushed through out_proj (computed in float64)."""
    wo = w[f"{prefix}.out_proj.weight"].astype(np.float64)
    return (w[f"{prefix}.out_proj.bias"] + wo @ w[f"{prefix}.v_proj.bias"].astype(np.float64)).astype(np.float32)


class _Graph:
    """A small helper to add initializers and nodes with readable names."""

    def __init__(self):
        self.nodes, self.inits = [], []

    def init(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        array = np.asarray(array)
        # np.array, not ascontiguousarray: that would turn a scalar into shape (1,).
        self.inits.append(numpy_helper.from_array(np.array(array, dtype=np.float32 if array.dtype.kind == "f" else array.dtype, order="C"), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str] | int = 1, name: str = "", domain: str = "", **attrs) -> list[str]:
        from onnx import helper

        if isinstance(outputs, int):
            outputs = [f"{name or op}_out{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name or None, domain=domain or None, **attrs))
        return outputs


def default_alignment_heads(n_layers: int) -> list[tuple[int, int]]:
    """openai/whisper's default when a model names no alignment heads: every head of the upper half."""
    return [(layer, head) for layer in range(n_layers // 2, n_layers) for head in range(HEADS)]


def build_decoder(w: dict[str, np.ndarray], n_layers: int, vocab: int, d_model: int = 512,
                  alignment_heads: list[tuple[int, int]] | None = None):
    """The decoder ModelProto from the weights `w`: inputs inputs_embeds (B, T, 512), position_ids
    (T,), logit_mask (1 or B x n, vocab), head_positions (n,: which of the T positions the
    head scores, [-1] for a token step), past and cross K/V; outputs those positions' hidden
    states (B x n, 512, row b * n + j), the tokens that can be their argmax, bounds on their
    logits (lower, upper: B x n, vocab; see _bounded_head), present self K/V, then (ALIGNMENT_OUTPUTS) the alignment
    heads' cross-attention probabilities `alignment` (B, len(alignment_heads), T, frames)
    and every position's final hidden state `hidden_states` (B, T, 512): word timestamps
    fetch those two once per window; the token steps do not ask for them."""
    from onnx import TensorProto, helper

    g = _Graph()
    head = d_model // HEADS
    kv_shape = ["batch", HEADS, "past", head]
    inputs = [helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT, ["batch", "tokens", d_model]),
              helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["tokens"]),
              helper.make_tensor_value_info("logit_mask", TensorProto.FLOAT, ["mask_rows", vocab]),
              helper.make_tensor_value_info(HEAD_POSITIONS, TensorProto.INT64, ["scored"])]
    head_outputs = {"hidden": (TensorProto.FLOAT, ["rows", d_model]), "candidate_mask": (TensorProto.BOOL, ["rows", vocab]),
            "lower": (TensorProto.FLOAT, ["rows", vocab]), "upper": (TensorProto.FLOAT, ["rows", vocab])}
    outputs = [helper.make_tensor_value_info(name, *head_outputs[name]) for name in MHA_HEAD_OUTPUTS]
    for i in range(n_layers):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past.{i}.{kv}", TensorProto.FLOAT, kv_shape))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kv}", TensorProto.FLOAT, ["batch", HEADS, "total", head]))
    for i in range(n_layers):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"cross.{i}.{kv}", TensorProto.FLOAT, cross_shape(kv, head)))
    alignment_heads = [tuple(map(int, lh)) for lh in (alignment_heads or default_alignment_heads(n_layers))]
    word_outputs = {"alignment": ["batch", len(alignment_heads), "tokens", "frames"], "hidden_states": ["batch", "tokens", d_model]}
    outputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, word_outputs[name]) for name in ALIGNMENT_OUTPUTS]
    probs = {}  # layer -> its cross-attention probabilities (B, 8, frames, T)

    tok = "inputs_embeds"  # looked up by the caller in embed_tokens.npy (see module docstring)
    (pos,) = g.node("Gather", [g.init("embed_positions", w["decoder.embed_positions.weight"]), "position_ids"], name="embed/positions")
    split = g.init("qkv_split", np.array([d_model] * 3, dtype=np.int64))
    # Cross-attention runs per window, not per row: the cross K/V hold one row per window
    # and the rows of the batch are windows x rows_per_window (beam search's beams, window
    # by window), so a window's queries stack along the position axis and its K/V are read
    # once, not once per beam (each row read 18 MB of cross K/V a step: a 5-beam step was
    # 12.0 ms against 5.7 for one row). Greedy has one row per window: the same products.
    (windows,) = g.node("Shape", ["cross.0.key"], name="cross/windows", start=0, end=1)
    window_heads = g.node("Concat", [windows, g.init("cross.window_heads_tail", np.array([-1, HEADS, head], dtype=np.int64))],
                          name="cross/window_heads_shape", axis=0)[0]
    (rows_shape,) = g.node("Shape", [tok], name="cross/rows_shape", start=0, end=2)
    model_shape = g.node("Concat", [rows_shape, g.init("cross.model_tail", np.array([d_model], dtype=np.int64))],
                         name="cross/model_shape", axis=0)[0]

    def skip_norm(x: str, residual: str, norm: str, bias: str | None, name: str) -> tuple[str, str]:
        """residual + x (+ bias), then LayerNorm: (normalized, sum)."""
        ins = [x, residual, g.init(f"{norm}.weight", w[f"{norm}.weight"]), g.init(f"{norm}.bias", w[f"{norm}.bias"])]
        ins += [bias] if bias else []
        out = g.node("SkipLayerNormalization", ins, [f"{name}/norm", "", "", f"{name}/sum"], name=name,
                     domain="com.microsoft", epsilon=1e-5)
        return out[0], out[3]

    h, x = skip_norm(tok, pos, "decoder.layers.0.self_attn_layer_norm", None, "embed/norm")
    for i in range(n_layers):
        p = f"decoder.layers.{i}"
        # Self-attention: one QKV product; MultiHeadAttention adds the q bias, appends to the past.
        wqkv = np.concatenate([w[f"{p}.self_attn.{k}_proj.weight"].T for k in "qkv"], axis=1)
        bqkv = np.concatenate([w[f"{p}.self_attn.q_proj.bias"], np.zeros(2 * d_model, np.float32)])
        (qkv,) = g.node("MatMul", [h, g.init(f"{p}.self_attn.qkv", wqkv)], name=f"{p}/self/qkv")
        q, k, v = g.node("Split", [qkv, split], 3, name=f"{p}/self/split", axis=2)
        attn = g.node("MultiHeadAttention", [q, k, v, g.init(f"{p}.self_attn.qkv_bias", bqkv), "", "", f"past.{i}.key", f"past.{i}.value"],
                      [f"{p}/self/attn", f"present.{i}.key", f"present.{i}.value"], name=f"{p}/self/attn",
                      domain="com.microsoft", num_heads=HEADS, unidirectional=1)
        (o,) = g.node("MatMul", [attn[0], g.init(f"{p}.self_attn.out", w[f"{p}.self_attn.out_proj.weight"].T)], name=f"{p}/self/out")
        h, x = skip_norm(o, x, f"{p}.encoder_attn_layer_norm", g.init(f"{p}.self_attn.out_bias", _folded_bias(w, f"{p}.self_attn")), f"{p}/self/norm")
        # Cross-attention over the K/V the encoder graph computed once per window: plain
        # MatMul/Softmax, which measured 2.5x faster here than MultiHeadAttention with 4-D keys.
        # Transposed products, K q^T and V^T p^T: the cross K and V^T are then the left
        # operand, read as they are, where as the right one MLAS copied them into its packed
        # layout at every product with more than one query row (verify, beam, batched
        # windows). 6 layers, 1500 frames, AMD EPYC Zen 3, 2 threads: 1 query 2.91 -> 2.41 ms,
        # 5 queries 3.69 -> 2.80 ms.
        scale = np.float32(1.0 / np.sqrt(head))  # folded into the q projection
        (cq,) = g.node("MatMul", [h, g.init(f"{p}.cross.q", w[f"{p}.encoder_attn.q_proj.weight"].T * scale)], name=f"{p}/cross/q")
        (cq,) = g.node("Add", [cq, g.init(f"{p}.cross.q_bias", w[f"{p}.encoder_attn.q_proj.bias"] * scale)], name=f"{p}/cross/q_bias")
        (cq,) = g.node("Reshape", [cq, window_heads], name=f"{p}/cross/q_heads")  # (windows, rows x T, heads, head_dim)
        (cq,) = g.node("Transpose", [cq], name=f"{p}/cross/q_bnhs", perm=[0, 2, 3, 1])  # (windows, heads, head_dim, rows x T)
        (s,) = g.node("MatMul", [f"cross.{i}.key", cq], name=f"{p}/cross/scores")  # (windows, heads, frames, rows x T)
        (s,) = g.node("Softmax", [s], name=f"{p}/cross/softmax", axis=2)
        probs[i] = s
        (c,) = g.node("MatMul", [f"cross.{i}.value", s], name=f"{p}/cross/context")  # (windows, heads, head_dim, rows x T)
        (c,) = g.node("Transpose", [c], name=f"{p}/cross/c_bsnh", perm=[0, 3, 1, 2])
        (c,) = g.node("Reshape", [c, model_shape], name=f"{p}/cross/c_merge")
        (o,) = g.node("MatMul", [c, g.init(f"{p}.cross.out", w[f"{p}.encoder_attn.out_proj.weight"].T)], name=f"{p}/cross/out")
        h, x = skip_norm(o, x, f"{p}.final_layer_norm", g.init(f"{p}.cross.out_bias", _folded_bias(w, f"{p}.encoder_attn")), f"{p}/cross/norm")
        # Feed-forward; its residual sum is normalized by the next layer's first norm.
        (f,) = g.node("MatMul", [h, g.init(f"{p}.fc1", w[f"{p}.fc1.weight"].T)], name=f"{p}/fc1")
        (f,) = g.node("BiasGelu", [f, g.init(f"{p}.fc1.bias", w[f"{p}.fc1.bias"])], name=f"{p}/gelu", domain="com.microsoft")
        (f,) = g.node("MatMul", [f, g.init(f"{p}.fc2", w[f"{p}.fc2.weight"].T)], name=f"{p}/fc2")
        norm = f"decoder.layers.{i + 1}.self_attn_layer_norm" if i + 1 < n_layers else "decoder.layer_norm"
        h, x = skip_norm(f, x, norm, g.init(f"{p}.fc2.bias", w[f"{p}.fc2.bias"]), f"{p}/ffn/norm")

    g.node("Identity", [h], ["hidden_states"], name="words/hidden_states")
    # The alignment heads, in their order: one Gather per (layer, head), then one Concat.
    picked = [g.node("Gather", [probs[layer], g.init(f"words.head_{layer}_{hd}", np.array([hd], dtype=np.int64))],
                     name=f"words/head_{layer}_{hd}", axis=1)[0] for layer, hd in alignment_heads]
    (heads,) = g.node("Concat", picked, name="words/heads", axis=1)  # (B, heads, frames, T)
    g.node("Transpose", [heads], ["alignment"], name="words/alignment", perm=[0, 1, 3, 2])
    # The positions the head scores: [-1] for a token step; speculative decoding's check
    # (core/speculative.py) scores each of its k + 1 positions, rows b * n + j.
    (picked_rows,) = g.node("Gather", [h, "head_positions"], name="head/positions", axis=1)
    g.node("Reshape", [picked_rows, g.init("head.rows_shape", np.array([-1, d_model], dtype=np.int64))], ["hidden"], name="head/rows")
    _bounded_head(g, "hidden", w)
    graph = helper.make_graph(g.nodes, "whisper_decoder_mha", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)])
    helper.set_model_props(model, dict([CROSS_ROWS, CROSS_LAYOUT]))
    return model


def _bounded_head(g: _Graph, hidden: str, w: dict[str, np.ndarray], exact_dims: int = EXACT_DIMS) -> None:
    """Outputs `lower` and `upper` with lower <= logit <= upper for every token, from a
    quarter of the output projection's bytes, and `candidate_mask` (rows, vocab): greedy
    decoding only needs the argmax, and only tokens whose upper end reaches their row's
    best lower end can be it (after the input `logit_mask`, 0 or -inf per token); those few
    (1 at the median, at most 30 over the sample files) are then scored exactly from their FP32
    rows (model.BoundedLogits). The FP32 projection is 106 MB read per token, this 31 MB.

    logit_i = w_i . h splits over two sets of hidden dims:
    - the EXACT_DIMS with the largest final-LayerNorm |gamma| (the outlier dims of h, one
      holds half its energy): FP32 weights, FP32 product;
    - the rest: weights as int8 per row, w = s_i q_i + r_i, and h quantized by
      DynamicQuantizeLinear, h = s_h (hq - zp) + e. Then w . h = s_i s_h q_i . (hq - zp)
      [MatMulInteger on uint8 rows, exact in int32] + s_i q_i . e + r_i . h, and by Cauchy-Schwarz the
      last two are at most s_i |q_i| |e| + |r_i| |h_rest|; e is computed from what the
      quantizer produced, so the bound holds whatever its rounding.
    Plus 1e-4 |w_i| |h| for float32 rounding, in this head and in any FP32 dot product
    (a 512-term sum is off by at most ~3e-5 |w_i| |h|)."""
    table = w["decoder.embed_tokens.weight"].astype(np.float64)  # the output projection is tied to it
    order = np.argsort(-np.abs(w["decoder.layer_norm.weight"]), kind="stable")
    exact, rest = np.sort(order[:exact_dims]), np.sort(order[exact_dims:])
    w_rest = table[:, rest]
    scale = (np.abs(w_rest).max(axis=1) / 127.0).astype(np.float32)
    scale[scale == 0] = 1.0
    q = np.round(w_rest / scale[:, None])
    residual = w_rest - q * scale[:, None]

    (h_exact,) = g.node("Gather", [hidden, g.init("head.exact_dims", exact.astype(np.int64))], name="head/exact_dims", axis=1)
    (h_rest,) = g.node("Gather", [hidden, g.init("head.rest_dims", rest.astype(np.int64))], name="head/rest_dims", axis=1)
    (part_exact,) = g.node("MatMul", [h_exact, g.init("head.exact_weight_t", table[:, exact].T)], name="head/exact")
    hq, hq_scale, hq_zp = g.node("DynamicQuantizeLinear", [h_rest], 3, name="head/quantize_h")
    # The rows as uint8 (q + 128, zero point 128), not int8: MLAS's u8 x s8 kernel on AVX2
    # (vpmaddubsw) saturates pairs of products at 16 bits (sums off by 1e5 measured on an
    # AVX2-only EPYC), while u8 x u8 widens first: exact in int32 on every CPU.
    rows_u8 = (np.ascontiguousarray(q.T) + 128).astype(np.uint8)
    (acc,) = g.node("MatMulInteger", [hq, g.init("head.rest_weight_u8_t", rows_u8), hq_zp, g.init("head.rest_zero_point", np.array(128, dtype=np.uint8))],
                    name="head/int8")
    (acc,) = g.node("Cast", [acc], name="head/acc_float", to=1)
    (col_scale,) = g.node("Mul", [g.init("head.row_scale", scale), hq_scale], name="head/scale")
    (part_rest,) = g.node("Mul", [acc, col_scale], name="head/rest")
    (approx,) = g.node("Add", [part_exact, part_rest], name="head/approx")
    # e = h_rest - s_h (hq - zp), exactly as quantized
    (hq_f,) = g.node("Cast", [hq], name="head/hq_float", to=1)
    (zp_f,) = g.node("Cast", [hq_zp], name="head/zp_float", to=1)
    (centred,) = g.node("Sub", [hq_f, zp_f], name="head/centre")
    (h_back,) = g.node("Mul", [centred, hq_scale], name="head/dequantize_h")
    (err,) = g.node("Sub", [h_rest, h_back], name="head/h_error")
    norms, axis = {}, g.init("head.axis1", np.array([1], dtype=np.int64))
    for name, x in (("err", err), ("rest", h_rest), ("all", hidden)):
        (norms[name],) = g.node("ReduceL2", [x, axis], name=f"head/norm_{name}", keepdims=1)
    # The bound is (|h err|, |h rest|, |h|) (rows, 3) times each token's three coefficients
    # (3, vocab); one Gemm per side adds it to the logit filters' mask (its C input, 0 or -inf
    # per token), where ten elementwise passes over (rows, vocab) did it one term at a time.
    coefficients = np.stack([scale * np.linalg.norm(q, axis=1), np.linalg.norm(residual, axis=1), 1e-4 * np.linalg.norm(table, axis=1)]).astype(np.float32)
    (norm3,) = g.node("Concat", [norms["err"], norms["rest"], norms["all"]], name="head/norms", axis=1)
    (neg3,) = g.node("Neg", [norm3], name="head/norms_negated")
    (up_mask,) = g.node("Gemm", [norm3, g.init("head.bound_coefficients", coefficients), "logit_mask"], name="head/bound_up")
    (down_mask,) = g.node("Gemm", [neg3, "head.bound_coefficients", "logit_mask"], name="head/bound_down")
    # The logit filters' -inf (suppressed tokens) came in with the Gemms' C.
    g.node("Add", [approx, down_mask], ["lower"], name="head/lower")
    g.node("Add", [approx, up_mask], ["upper"], name="head/upper")
    (best_lower,) = g.node("ReduceMax", ["lower", axis], name="head/best_lower", keepdims=1)
    # The mask itself is the output: ONNX Runtime's NonZero took 0.33 ms on one row and 1.19
    # ms on five (a speculative check), numpy's flatnonzero of the mask 0.016 / 0.069 ms.
    g.node("GreaterOrEqual", ["upper", best_lower], ["candidate_mask"], name="head/reaches")


def build_logits_head(vocab: int, d_model: int, table_file: str, table_offset: int):
    """The FP32 output projection alone, logits = hidden @ table.T, its weight read from the
    token table in `table_file` (beside the model: embed_tokens.npy) at `table_offset`:
    no second copy on disk, and their log_softmax `logprobs` (beam search's scores: ONNX
    Runtime's kernel takes ~0.1 ms for 5 x 51865, numpy 1.8-2.5 ms on real logits, whose
    deep negative tail sends its exp off the fast path). Only beam search, decoding with
    log-probabilities (sampling, temperature fallback) and --full-logits load it."""
    from onnx import TensorProto, helper

    init = TensorProto(name="table", data_type=TensorProto.FLOAT, dims=[vocab, d_model], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", table_file), ("offset", str(table_offset)), ("length", str(vocab * d_model * 4))):
        init.external_data.add(key=key, value=value)
    nodes = [helper.make_node("Gemm", ["hidden", "table"], ["logits"], name="logits/projection", transB=1),
             helper.make_node("LogSoftmax", ["logits"], [HEAD_LOG_PROBS], name="logits/log_softmax", axis=-1)]
    graph = helper.make_graph(nodes, "whisper_logits", [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", d_model])],
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", vocab]) for name in ("logits", HEAD_LOG_PROBS)],
                              [init])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def cross_shape(kind: str, head: int) -> list:
    """The decoder's cross K (B, 8, frames, 64) and V (B, 8, 64, frames), symbolic dims named."""
    return ["batch", HEADS, "frames", head] if kind == "key" else ["batch", HEADS, head, "frames"]


def add_cross_kv(encoder, w: dict[str, np.ndarray], n_layers: int, d_model: int = 512):
    """The encoder with outputs `cross.{layer}.key` / `.value` (cross_shape) instead of
    last_hidden_state: each decoder layer's cross-attention K and V (V without its bias,
    which the decoder folded into the output projection). One output each, not one for
    all: the projection's temporary is then 3 MB, not 36 MB, at the encoder's peak, and
    4-D transposes take ONNX Runtime's fast path (a 5-D one measured ~50 ms); V's (0, 2, 3, 1)
    costs what K's (0, 2, 1, 3) does (the encoder 718 vs 725 ms before V was transposed)."""
    from onnx import TensorProto, helper

    states = encoder.graph.output[0].name
    g = _Graph()
    shape = g.init("cross.heads_shape", np.array([0, 0, HEADS, d_model // HEADS], dtype=np.int64))
    outputs = []
    for i in range(n_layers):
        for kind in ("key", "value"):
            name = f"cross.{i}.{kind}"
            weight = w[f"decoder.layers.{i}.encoder_attn.{kind[0]}_proj.weight"].T
            (proj,) = g.node("MatMul", [states, g.init(f"{name}.weight", weight)], name=f"{name}/project")
            (heads,) = g.node("Reshape", [proj, shape], name=f"{name}/heads")
            g.node("Transpose", [heads], [name], name=f"{name}/layout", perm=[0, 2, 1, 3] if kind == "key" else [0, 2, 3, 1])
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, cross_shape(kind, d_model // HEADS)))
    encoder.graph.node.extend(g.nodes)
    encoder.graph.initializer.extend(g.inits)
    del encoder.graph.output[:]
    encoder.graph.output.extend(outputs)
    return encoder


def build_mha_graphs(fused_encoder: Path, hf_dir: Path, config: dict, alignment_heads: list | None = None):
    """(encoder, decoder, token embedding table) for the `mha` variant; alignment_heads:
    generation_config.json's (layer, head) pairs, None for openai/whisper's default."""
    import onnx

    n_layers, vocab, d_model = int(config["decoder_layers"]), int(config["vocab_size"]), int(config["d_model"])
    w = _load_weights(hf_dir)  # once: 290 MB of safetensors
    encoder = add_cross_kv(onnx.load(str(fused_encoder)), w, n_layers, d_model)
    return encoder, build_decoder(w, n_layers, vocab, d_model, alignment_heads), w["decoder.embed_tokens.weight"]

"""The speculative decoder's draft: the same decoder, its weights in 4 bits, greedy's guess.

Exact speculative decoding (core/speculative.py) needs a cheap guess of the next few
tokens; the FP32 decoder then checks them all in one forward and keeps what greedy would
have produced, so the draft's quality sets only the speed, never the tokens. The best
guess measured here is the model itself with its weights quantized (RESULTS.md,
"Speculative decoding"; prompt lookup gave 1.04 tokens per forward, layer skip at most
1.73): over the 8 dev short files, 4 guesses a forward, 8-bit weights kept 217 of 222
guesses (4.74 tokens a forward), 4-bit 214 of 231 (4.51) at a cheaper guess, and 4 bits
were the fastest loop (0.66x plain greedy's time against 0.76-0.86x for 8 bits, AMD EPYC
AVX2, 2 threads). So:

- every MatMul with a weight initializer becomes com.microsoft MatMulNBits (symmetric,
  blocks of 32 along K, the default zero point, accuracy_level 4: int8 arithmetic);
- the bounded head gives way to the tied output projection, quantized the same way, the
  logit filters' mask, and an ArgMax: one token per row, `token` (B, 1);
- it reads the FP32 past self K/V the verifier wrote and the window's cross K/V, which the
  caller cuts to the frames that hold audio (the rest is padding the draft can skip
  without changing a token: the verifier reads all 1500).

Its own present K/V serve only its next guesses; the verifier's replace them each cycle.
"""

from __future__ import annotations

import numpy as np

BLOCK = 32  # MatMulNBits block along K: 512 and 2048 are multiples
DRAFT_BITS = 4


def quantize_blocks(weight: np.ndarray, bits: int = DRAFT_BITS, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """MatMulNBits' B and scales for a MatMul weight (K, N): per output column and block of
    `block` rows, scale = max|w| / (2^(bits-1) - 1), q = round(w / scale) + 2^(bits-1), the
    zero point MatMulNBits assumes when none is given. B is (N, K / block, block * bits / 8)
    uint8, 4-bit values packed low nibble first."""
    k, n = weight.shape
    if k % block:
        raise ValueError(f"K = {k} is not a multiple of the block {block}")
    w = weight.T.reshape(n, k // block, block).astype(np.float64)  # (N, blocks, block)
    top = (1 << (bits - 1)) - 1
    scale = np.abs(w).max(axis=2) / top
    scale[scale == 0] = 1.0
    q = (np.clip(np.round(w / scale[..., None]), -top, top) + (1 << (bits - 1))).astype(np.uint8)
    if bits == 4:
        q = q[..., 0::2] | (q[..., 1::2] << 4)
    elif bits != 8:
        raise ValueError(f"bits = {bits}: 4 or 8")
    return np.ascontiguousarray(q), scale.astype(np.float32).reshape(-1)


def dequantize_blocks(packed: np.ndarray, scale: np.ndarray, k: int, bits: int = DRAFT_BITS, block: int = BLOCK) -> np.ndarray:
    """The (K, N) weight MatMulNBits computes with (the tests' check of the packing)."""
    n = packed.shape[0]
    q = packed.astype(np.int32)
    if bits == 4:
        q = np.stack([q & 15, q >> 4], axis=-1).reshape(n, k // block, block)
    w = (q - (1 << (bits - 1))) * scale.reshape(n, k // block, 1)
    return w.reshape(n, k).T.astype(np.float32)


def _matmul_nbits(g, x: str, weight: np.ndarray, name: str, bits: int, outputs: list[str] | int = 1) -> str:
    packed, scale = quantize_blocks(weight, bits)
    k, n = weight.shape
    (out,) = g.node("MatMulNBits", [x, g.init(f"{name}.q", packed), g.init(f"{name}.scales", scale)], outputs, name=name,
                    domain="com.microsoft", K=k, N=n, bits=bits, block_size=BLOCK, accuracy_level=4)
    return out


def build_draft(decoder, table: np.ndarray, bits: int = DRAFT_BITS):
    """The draft ModelProto from the FP32 decoder ModelProto (decoder_graph.build_decoder)
    and the token table (vocab, d_model): the decoder's layers with MatMulNBits weights, a
    quantized tied projection of the last position, the mask, the argmax."""
    from onnx import TensorProto, helper, numpy_helper

    from whisper_ort.build.decoder_graph import _Graph
    from whisper_ort.core.decoders import DRAFT_OUTPUT
    from whisper_ort.core.folder import HEAD_POSITIONS

    inits = {t.name: t for t in decoder.graph.initializer}
    g = _Graph()
    for node in decoder.graph.node:
        if node.name.startswith(("head/", "words/")):
            continue  # the bounded head and the word-timestamp outputs: replaced / not needed
        weight = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if weight is not None and len(weight.dims) == 2:
            _matmul_nbits(g, node.input[0], numpy_helper.to_array(weight), node.name, bits, list(node.output))
        else:
            g.nodes.append(node)
    (hidden,) = [n.input[0] for n in decoder.graph.node if n.name == "words/hidden_states"]  # the final LayerNorm's output
    (last,) = g.node("Gather", [hidden, g.init("draft.last_position", np.array(-1, dtype=np.int64))], name="draft/last", axis=1)
    logits = _matmul_nbits(g, last, np.ascontiguousarray(table.T), "draft/logits", bits)
    (masked,) = g.node("Add", [logits, "logit_mask"], name="draft/mask")
    g.node("ArgMax", [masked], [DRAFT_OUTPUT], name="draft/argmax", axis=-1, keepdims=1)

    used = {i for n in g.nodes for i in n.input}
    kept_inits = [t for t in decoder.graph.initializer if t.name in used]  # FP32 weights now quantized drop out
    outputs = [helper.make_tensor_value_info(DRAFT_OUTPUT, TensorProto.INT64, ["batch", 1])]
    outputs += [o for o in decoder.graph.output if o.name.startswith("present.")]
    inputs = [i for i in decoder.graph.input if i.name != HEAD_POSITIONS]  # it scores the last position only
    graph = helper.make_graph(g.nodes, "whisper_decoder_draft", inputs, outputs, kept_inits + g.inits)
    model = helper.make_model(graph, opset_imports=list(decoder.opset_import))
    helper.set_model_props(model, {p.key: p.value for p in decoder.metadata_props} | {"draft_bits": str(bits)})
    return model


"""Optimized variant folders: ONNX Runtime's transformer fusions on the exported model.

`whisper-ort optimize` writes `whisper-base-with-past-fused/` beside the model folder
(SkipLayerNormalization, BiasGelu, LayerNormalization fusions from
`onnxruntime.transformers.optimizer` with the BART rules that fit Whisper, plus our own
fusion of each encoder self-attention into one MultiHeadAttention node, which the BART
rules do not recognise in the SDPA export), with the same configs and a manifest. `--variant fused` selects it in bench/transcribe/compare.
The fused graphs are checked against the originals on real audio by the tests.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from .export import _swap_in, check_manifest, write_manifest
from .model import (
    DECODER_FIRST,
    DECODER_MERGED,
    DECODER_MHA,
    DECODER_WITH_PAST,
    EMBEDDINGS,
    ENCODER,
    LOGITS_HEAD,
    MHA_HEAD_OUTPUTS,
)

VARIANTS = ("default", "fused", "merged", "merged-tied", "mha")
DEFAULT_VARIANT = "mha"  # measured fastest (token step, first step, load) with the lowest memory: RESULTS.md, levers


def resolve_variant(onnx_dir: str | Path, variant: str = "auto") -> str:
    """"auto": the mha variant when `whisper-ort optimize` has built it, else the export itself."""
    if variant in (None, "", "auto"):
        return DEFAULT_VARIANT if variant_dir(onnx_dir, DEFAULT_VARIANT).is_dir() else "default"
    return variant
_COPIED = ("config.json", "generation_config.json", "tokenizer.json", "preprocessor_config.json")


def variant_dir(onnx_dir: str | Path, variant: str = "default") -> Path:
    """The folder of a variant: the model folder itself for "default", else a sibling."""
    onnx_dir = Path(onnx_dir)
    if variant in (None, "", "default"):
        return onnx_dir
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    return onnx_dir.with_name(f"{onnx_dir.name}-{variant}")


def _is_built(dst: Path, force: bool, log) -> bool:
    if not force and dst.is_dir() and not check_manifest(dst, deep=False):
        log(f"{dst}: valid (manifest matches), nothing to do")
        return True
    return False


def _finish(src: Path, build: Path, dst: Path, start: float, log) -> None:
    """Configs beside the graphs, the manifest, then the rename that makes the folder appear."""
    for name in _COPIED:
        shutil.copyfile(src / name, build / name)
    write_manifest(build)
    _swap_in(build, dst)
    log(f"built {dst} in {time.perf_counter() - start:.0f} s")


def build_fused(onnx_dir: str | Path = "whisper-base-with-past", force: bool = False, log=print) -> Path:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    src = Path(onnx_dir).resolve()
    dst = variant_dir(src, "fused")
    if _is_built(dst, force, log):
        return dst
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".optimize-", dir=src.parent) as tmp:
        build = Path(tmp) / "fused"
        build.mkdir()
        for name in (ENCODER, DECODER_FIRST, DECODER_WITH_PAST):
            # opt_level=0: only the fusions; ONNX Runtime applies its own graph levels at load.
            model = optimize_model(str(src / name), model_type="bart", num_heads=8, hidden_size=512,
                                   optimization_options=FusionOptions("bart"), opt_level=0, use_gpu=False)
            fused = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
            if name == ENCODER:
                fused["MultiHeadAttention"] = fuse_encoder_attention(model.model)
            log(f"{name}: {fused}")
            model.save_model_to_file(str(build / name))
        _finish(src, build, dst, start, log)
    return dst


# ---------------------------------------------------------------- merged variant


def _dedupe_output_projection(model) -> int:
    """Point the output projection at the token embeddings (Whisper ties them).

    The export stores proj_out as its own transposed copy (512 x 51865, 106 MB). We
    replace each MatMul(h, W) with com.microsoft FusedMatMul(h, E, transB=1) when
    W == E.T exactly, and drop W. Returns the number of bytes saved.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    embed = next((t for t in model.graph.initializer if "embed_tokens" in t.name), None)
    if embed is None:
        return 0
    e = numpy_helper.to_array(embed)
    candidates = [t for t in model.graph.initializer if list(t.dims) == [e.shape[1], e.shape[0]]]
    saved = 0
    for w in candidates:
        if not np.array_equal(numpy_helper.to_array(w), e.T):
            continue

        def rewrite(graph, w=w):
            for node in graph.node:
                if node.op_type == "MatMul" and node.input[1] == w.name:
                    new = helper.make_node("FusedMatMul", [node.input[0], embed.name], list(node.output), name=node.name + "_tied",
                                           domain="com.microsoft", transA=0, transB=1, alpha=1.0)
                    node.CopyFrom(new)
                for attr in node.attribute:
                    if attr.type == onnx.AttributeProto.GRAPH:
                        rewrite(attr.g, w)

        rewrite(model.graph)
        model.graph.initializer.remove(inits[w.name])
        saved += e.nbytes
    if saved and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return saved


def _save_external(model, path: Path) -> None:
    """Weights in one side file: ONNX Runtime reads them without a second protobuf copy."""
    import onnx

    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=path.name + ".data", size_threshold=1024)


def build_merged(onnx_dir: str | Path = "whisper-base-with-past", force: bool = False, log=print, tied: bool = False) -> Path:
    """Fused graphs, one merged decoder (one copy of its weights), external data.

    tied=True (variant merged-tied) also points the output projection at the embeddings:
    106 MB less, but its FusedMatMul(transB) is not prepacked and costs ~1.3 ms per token
    here, so it only pays with --no-prepacking, where memory is the goal.
    """
    import onnx
    from optimum.onnx.graph_transformations import merge_decoders

    src = Path(onnx_dir).resolve()
    fused = build_fused(src, log=log)  # a valid fused folder is reused; `whisper-ort optimize --force` rebuilds it first
    dst = variant_dir(src, "merged-tied" if tied else "merged")
    if _is_built(dst, force, log):
        return dst
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".optimize-", dir=src.parent) as tmp:
        build = Path(tmp) / "merged"
        build.mkdir()
        _save_external(onnx.load(str(fused / ENCODER)), build / ENCODER)
        merged = merge_decoders(str(fused / DECODER_FIRST), str(fused / DECODER_WITH_PAST), strict=False,
                                save_path=str(Path(tmp) / "merged-raw.onnx"))
        if tied:
            saved = _dedupe_output_projection(merged)
            log(f"merged decoder: output projection tied to the embeddings ({saved / 1e6:.0f} MB saved)")
        _save_external(merged, build / DECODER_MERGED)
        _finish(src, build, dst, start, log)
    return dst


# ---------------------------------------------------------------- our decoder graph


def build_mha(onnx_dir: str | Path = "whisper-base-with-past", force: bool = False, log=print) -> Path:
    """The fused encoder with a cross K/V output, our decoder graph (whisper_ort.decoder_graph),
    both written from the FP32 weights of the torch folder beside the model folder, the token
    table, and the FP32 output projection over it for when every logit is needed."""
    import json

    import numpy as np
    import onnx

    from .decoder_graph import build_logits_head, build_mha_graphs
    from .export import HF_FOLDER_SUFFIX
    from .model import EmbeddingRows

    src = Path(onnx_dir).resolve()
    fused = build_fused(src, log=log)  # a valid fused folder is reused; `whisper-ort optimize --force` rebuilds it first
    dst = variant_dir(src, "mha")
    if _is_current_mha(dst) and _is_built(dst, force, log):
        return dst
    hf_dir = src.with_name(src.name + HF_FOLDER_SUFFIX)
    if not (hf_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"{hf_dir / 'model.safetensors'}: missing (run `whisper-ort export`)")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".optimize-", dir=src.parent) as tmp:
        build = Path(tmp) / "mha"
        build.mkdir()
        encoder, decoder, embeddings = build_mha_graphs(fused / ENCODER, hf_dir, json.loads((src / "config.json").read_text()))
        decompose_skip_layer_norms(encoder)
        _save_external(encoder, build / ENCODER)
        _save_external(decoder, build / DECODER_MHA)
        np.save(build / EMBEDDINGS, embeddings)
        head = build_logits_head(*embeddings.shape, EMBEDDINGS, EmbeddingRows(build / EMBEDDINGS).data_offset)
        onnx.save_model(head, str(build / LOGITS_HEAD))
        _finish(src, build, dst, start, log)
    return dst


def _is_current_mha(folder: Path) -> bool:
    """A folder built by an older build_mha (no logits_head.onnx, decoder without bounded
    logits, encoder with SkipLayerNormalization) is rebuilt, not reused."""
    import onnx

    if not all((folder / name).is_file() for name in (DECODER_MHA, ENCODER, LOGITS_HEAD)):
        return False
    decoder = onnx.load(str(folder / DECODER_MHA), load_external_data=False).graph
    encoder = onnx.load(str(folder / ENCODER), load_external_data=False).graph
    return (tuple(o.name for o in decoder.output[: len(MHA_HEAD_OUTPUTS)]) == MHA_HEAD_OUTPUTS
            and not any(n.op_type == "SkipLayerNormalization" for n in encoder.node))


# ---------------------------------------------------------------- encoder attention


def _prune(graph) -> None:
    """Drop nodes whose outputs nothing uses (after a rewrite left them dangling)."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(out in needed for out in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    used = {i for n in graph.node for i in n.input}
    for init in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(init)


def decompose_skip_layer_norms(model) -> int:
    """Rewrite each com.microsoft SkipLayerNormalization as plain ops: the residual sum, then
    LayerNorm with its two row means as MatMuls by a (d, 1) column of 1/d. ONNX Runtime's
    SkipLayerNormalization (and LayerNormalization) kernel sums each row in double, one value
    at a time: 2.0 ms per (1500, 512) node here, the rewrite 0.7-1.0 ms (12 in the encoder).
    Mean and variance in float32, the variance in two passes. Returns the number rewritten."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    d_model = None
    inits = {t.name: t for t in graph.initializer}
    nodes, count = [], 0

    def op(kind: str, inputs: list[str], output: str) -> str:
        nodes.append(helper.make_node(kind, inputs, [output], name=output))
        return output

    for node in graph.node:
        if node.op_type != "SkipLayerNormalization":
            nodes.append(node)
            continue
        x, skip, gamma, beta, *rest = node.input
        bias = rest[0] if rest and rest[0] else None
        d_model = d_model or int(numpy_helper.to_array(inits[gamma]).shape[-1])
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
        p = f"{node.name or node.output[0]}/ln"
        total = node.output[3] if len(node.output) > 3 and node.output[3] else f"{p}/sum"
        s = op("Add", [x, skip], f"{p}/residual" if bias else total)
        if bias:
            op("Add", [s, bias], total)
        mean = op("MatMul", [total, "ln.row_mean"], f"{p}/mean")
        centred = op("Sub", [total, mean], f"{p}/centred")
        var = op("MatMul", [op("Mul", [centred, centred], f"{p}/squares"), "ln.row_mean"], f"{p}/var")
        inv_std = op("Reciprocal", [op("Sqrt", [op("Add", [var, f"ln.eps.{eps!r}"], f"{p}/var_eps")], f"{p}/std")], f"{p}/inv_std")
        normed = op("Mul", [centred, inv_std], f"{p}/normed")
        op("Add", [op("Mul", [normed, gamma], f"{p}/scaled"), beta], node.output[0])
        if f"ln.eps.{eps!r}" not in inits:
            inits[f"ln.eps.{eps!r}"] = numpy_helper.from_array(np.array(eps, dtype=np.float32), f"ln.eps.{eps!r}")
            graph.initializer.append(inits[f"ln.eps.{eps!r}"])
        count += 1
    if count:
        graph.initializer.append(numpy_helper.from_array(np.full((d_model, 1), 1.0 / d_model, dtype=np.float32), "ln.row_mean"))
        del graph.node[:]
        graph.node.extend(nodes)
    return count


def fuse_encoder_attention(model, num_heads: int = 8) -> int:
    """Replace each encoder self-attention (the SDPA export's Reshape/Transpose/Mul/MatMul/
    Softmax/MatMul chain) with one com.microsoft MultiHeadAttention node.

    MultiHeadAttention takes the projected q (with bias, unscaled), k and v as (B, S, 512)
    and the softmax scale; the export splits that scale over three Mul nodes, whose
    constants we multiply. Returns the number of layers fused.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    by_name = {n.name: n for n in model.graph.node}
    produced = {o: n for n in model.graph.node for o in n.output}
    inits = {t.name: t for t in model.graph.initializer}

    def const(name: str) -> float:
        node = produced.get(name)
        if node is not None and node.op_type == "Constant":
            return float(numpy_helper.to_array(node.attribute[0].t))
        return float(numpy_helper.to_array(inits[name]))

    fused = 0
    for layer in range(64):
        p = f"/layers.{layer}/self_attn"
        names = ["q_proj/Add", "k_proj/MatMul", "v_proj/Add", "Mul", "Mul_1", "Mul_2", "Softmax", "out_proj/MatMul", "Reshape_3"]
        nodes = {k: by_name.get(f"{p}/{k}") for k in names}
        if any(v is None for v in nodes.values()):
            break
        if nodes["out_proj/MatMul"].input[0] != nodes["Reshape_3"].output[0]:
            raise ValueError(f"{p}: unexpected attention layout, not fused")
        scale = 1.0
        for k in ("Mul", "Mul_1", "Mul_2"):
            scale *= const(nodes[k].input[1])
        out = f"{p}/MultiHeadAttention_output_0"
        mha = helper.make_node(
            "MultiHeadAttention",
            [nodes["q_proj/Add"].output[0], nodes["k_proj/MatMul"].output[0], nodes["v_proj/Add"].output[0]],
            [out], name=f"{p}/MultiHeadAttention", domain="com.microsoft", num_heads=num_heads, scale=float(np.float32(scale)),
        )
        # Insert right before the output projection so the graph stays topologically sorted.
        index = list(model.graph.node).index(nodes["out_proj/MatMul"])
        model.graph.node.insert(index, mha)
        nodes["out_proj/MatMul"].input[0] = out
        fused += 1
    if fused:
        _prune(model.graph)
        if not any(o.domain == "com.microsoft" for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return fused

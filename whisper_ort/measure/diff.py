"""`whisper-ort diff A.json B.json`: per-file unified diffs and WER between two runs' transcripts."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import jiwer


def load_texts(path: str | Path) -> dict[str, str]:
    """{file: text} from an inference_per_file.json (last ok repeat per file)."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read records ({exc})") from None
    texts = {}
    for row in rows:
        if row.get("status", "ok") == "ok":
            texts[row["file"]] = (row.get("text") or "").strip()
    return texts


def _wer(ref: str, hyp: str) -> tuple[int, int]:
    """(word errors, reference words); an empty reference counts every hypothesis word."""
    ref_words = ref.split()
    if not ref_words:
        return len(hyp.split()), 0
    out = jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, len(ref_words)


def compare_texts(a: dict[str, str], b: dict[str, str]) -> dict:
    """Per-file WER of b against a (a is the reference), and the corpus WER over shared files."""
    shared = sorted(set(a) & set(b))
    per_file, errors, words = {}, 0, 0
    for name in shared:
        e, n = _wer(a[name], b[name])
        per_file[name] = {"identical": a[name] == b[name], "wer": (e / n if n else float(e > 0)), "errors": e, "words": n}
        errors, words = errors + e, words + n
    return {
        "files": per_file,
        "only_in_a": sorted(set(a) - set(b)),
        "only_in_b": sorted(set(b) - set(a)),
        "n_identical": sum(v["identical"] for v in per_file.values()),
        "n_shared": len(shared),
        "overall_wer": errors / words if words else 0.0,
    }


def unified_diff(name: str, a: str, b: str, a_label: str, b_label: str) -> str:
    """Word-per-line unified diff, readable for one-line transcripts."""
    return "\n".join(difflib.unified_diff(a.split(), b.split(), f"{a_label}:{name}", f"{b_label}:{name}", lineterm="", n=3))


def render(result: dict, a: dict, b: dict, a_label: str, b_label: str) -> str:
    out = []
    for name, row in result["files"].items():
        if not row["identical"]:
            out.append(unified_diff(name, a[name], b[name], a_label, b_label))
            out.append(f"WER {name}: {100 * row['wer']:.2f}% ({row['errors']} errors / {row['words']} words)\n")
    for name in result["only_in_a"]:
        out.append(f"only in {a_label}: {name}")
    for name in result["only_in_b"]:
        out.append(f"only in {b_label}: {name}")
    out.append(f"{result['n_identical']}/{result['n_shared']} files identical; overall WER {100 * result['overall_wer']:.2f}%")
    return "\n".join(out)


def main_diff(args) -> int:
    a, b = load_texts(args.a), load_texts(args.b)
    result = compare_texts(a, b)
    print(render(result, a, b, args.a_label or Path(args.a).parent.name or "A", args.b_label or Path(args.b).parent.name or "B"))
    return 0 if result["n_identical"] == result["n_shared"] else 1

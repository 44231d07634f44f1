"""compare's summary: per implementation cold start, RSS, latency, WER, agreement with the
reference, ratio to the baseline; and its tables (markdown, CSV)."""

from __future__ import annotations

import csv
import io
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from whisper_ort.measure import wer as wer_mod
from whisper_ort.study.paths import REFERENCE as REFERENCE_OUT

if TYPE_CHECKING:  # compare.py imports this module
    from whisper_ort.measure.compare import ImplState, Plan
from whisper_ort.measure.environment import run_environment
from whisper_ort.measure.records import Record, read_records, stats, summarize


def _per_file_p50(records: list[Record]) -> dict[str, float]:
    by_file: dict[str, list[float]] = {}
    for r in records:
        if r.status == "ok" and r.t_total is not None:
            by_file.setdefault(r.file, []).append(r.t_total)
    return {f: stats(v)["p50"] for f, v in sorted(by_file.items())}


def _first_ok(records: list[Record]) -> dict[str, Record]:
    out: dict[str, Record] = {}
    for r in sorted(records, key=lambda r: r.repeat):
        if r.status == "ok":
            out.setdefault(r.file, r)
    return out


def load_reference(path: str | Path = REFERENCE_OUT) -> dict[str, str] | None:
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return {r.file: r.text for r in read_records(path) if r.status == "ok"}
    except (OSError, ValueError, TypeError):
        return None


def agreement(records: list[Record], reference: dict[str, str], spelling_dirs=None) -> dict:
    """How an implementation's transcripts compare with the reference (hf_generate) ones."""
    mine = _first_ok(records)
    common = sorted(set(mine) & set(reference))
    identical = [f for f in common if mine[f].text.strip() == reference[f].strip()]
    differing = [f for f in common if f not in identical]
    errors = words = 0
    per_file = {}
    for f in common:
        m = wer_mod.measures(reference[f], mine[f].text, True, spelling_dirs)
        per_file[f] = m["wer"]
        errors += m["substitutions"] + m["deletions"] + m["insertions"]
        words += m["ref_words"]
    return {
        "n_files": len(common),
        "identical_text": len(identical),
        "differing_files": differing,
        "wer_vs_reference": errors / words if words else None,
        "per_file_wer": per_file,
    }


def build_summary(plan: Plan, states: dict[str, ImplState], records: list[Record], started: datetime) -> dict:
    spelling = (str(plan.onnx_dir), str(plan.onnx_dir.with_name(plan.onnx_dir.name + "-hf")))
    references = wer_mod.manifest_references(plan.audio_dir) if plan.audio_dir else {}
    wer_all = wer_mod.wer_table(records, references, spelling_dirs=spelling) if references else {"normalizer": None, "implementations": {}}

    reference_source, reference = None, None
    if "hf_generate" in states and states["hf_generate"].records:
        reference_source = "hf_generate in this run"
        reference = {f: r.text for f, r in _first_ok(states["hf_generate"].records).items()}
    else:
        reference = load_reference()
        reference_source = REFERENCE_OUT if reference else None

    ok_names = [n for n, s in states.items() if any(r.status == "ok" for r in s.records)]
    baseline = plan.baseline if plan.baseline in ok_names else (ok_names[0] if ok_names else plan.baseline)
    base_records = states[baseline].records if baseline in states else []
    base_p50 = (stats(r.t_total for r in base_records if r.status == "ok") or {}).get("p50")
    base_files = _per_file_p50(base_records)

    impls = {}
    for name, state in states.items():
        s = summarize(state.records)
        s.pop("environment", None)
        p50 = (s["t_total_s"] or {}).get("p50")
        per_file = _per_file_p50(state.records)
        ratios = [per_file[f] / base_files[f] for f in per_file if base_files.get(f)]
        w = wer_all["implementations"].get(name)
        entry = {
            "implementation": name,
            "status": "failed" if state.error and not state.records else ("partial" if state.error else "ok"),
            "error": state.error,
            "variant": (state.ready.get("info") or {}).get("variant"),
            "info": state.ready.get("info"),
            "threads": plan.threads,
            "limits_applied": state.ready.get("limits"),
            "memory_cap": state.cap.describe() if state.cap is not None else None,
            "load_s": state.ready.get("load_s"),
            "ready_s": state.ready_s,
            "cold_start_s": stats(state.cold_starts_s)["p50"] if state.cold_starts_s else None,  # median over the spawns
            "cold_starts_s": state.cold_starts_s,
            "cold_start_first_s": state.cold_start_s,
            "cold_start_file": plan.first.name,
            "cold_record": state.cold_record,
            "rss_after_load_mb": state.ready.get("rss_mb"),
            "peak_rss_after_cold_mb": state.hwm_after_cold_mb,
            "peak_rss_mb": state.peak_rss_mb,
            **s,
            "per_file_p50_s": per_file,
            "wer_vs_manifest": None
            if w is None
            else {
                "overall_wer": w["overall_wer"],
                "errors": w["errors"],
                "ref_words": w["ref_words"],
                "n_files": w["n_files"],
                "missing": w["missing"],
                "per_file_wer": {f: m["wer"] for f, m in w["per_file"].items()},
            },
            "vs_reference": agreement(state.records, reference, spelling) if reference and name != "hf_generate" else None,
            "p50_ratio_to_baseline": (p50 / base_p50) if p50 is not None and base_p50 else None,
            "median_per_file_ratio_to_baseline": (stats(ratios) or {}).get("p50"),
        }
        impls[name] = entry

    return {
        "created": started.isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name] + sys.argv[1:],
        "implementations_order": list(states),
        "baseline": baseline,
        "baseline_requested": plan.baseline,
        "files": [p.name for p in plan.files],
        "cold_start_file": plan.first.name,
        "cold_starts": plan.cold_starts,
        "audio_dir": str(plan.audio_dir) if plan.audio_dir else None,
        "repeats": plan.repeats,
        "warmup": plan.warmup,
        "threads": plan.threads,
        "language": plan.language,
        "task": plan.task,
        "max_new_tokens": plan.max_new_tokens,
        "beam_size": getattr(plan, "beam_size", 1),
        "limits": {
            "label": plan.label,
            "sut": plan.sut,
            "cpus": plan.cpus or sorted(os.sched_getaffinity(0)),
            "n_cpus": len(plan.cpus) if plan.cpus else len(os.sched_getaffinity(0)),
            "cpus_pinned": bool(plan.cpus),
            "memory_gb": plan.memory_gb,
            "memory_mechanism": next((s.cap.mechanism for s in states.values() if s.cap is not None and s.cap.mechanism), None),
            "memory_note": next((s.cap.note for s in states.values() if s.cap is not None and s.cap.note), None),
        },
        "wer_normalizer": wer_all["normalizer"],
        "wer_reference_files": sorted(set(references) & {p.name for p in plan.files}),
        "reference_transcripts": reference_source,
        "environment": run_environment(plan.onnx_dir),
        "implementations": impls,
    }


COLUMNS = (
    ("implementation", "implementation"),
    ("p95 time (s)", "p95_time_s"),
    ("p50 (s)", "p50_s"),
    ("mean RTF", "mean_rtf"),
    ("cold start (s)", "cold_start_s"),
    ("peak RSS (MB)", "peak_rss_mb"),
    ("WER vs manifest (%)", "wer_vs_manifest_pct"),
)


def table_rows(summary: dict) -> list[dict]:
    rows = []
    for name in summary["implementations_order"]:
        e = summary["implementations"][name]
        t = e.get("t_total_s") or {}
        w = e.get("wer_vs_manifest") or {}
        v = e.get("vs_reference") or {}
        rows.append(
            {
                "implementation": name,
                "p95_time_s": t.get("p95"),
                "p50_s": t.get("p50"),
                "mean_rtf": (e.get("rtf") or {}).get("mean"),
                "cold_start_s": e.get("cold_start_s"),
                "peak_rss_mb": e.get("peak_rss_mb"),
                "wer_vs_manifest_pct": None if w.get("overall_wer") is None else 100.0 * w["overall_wer"],
                "p50_ratio": e.get("p50_ratio_to_baseline"),
                "median_per_file_ratio": e.get("median_per_file_ratio_to_baseline"),
                "load_s": e.get("load_s"),
                "n_ok": e.get("n_ok"),
                "n_failed": e.get("n_failed"),
                "identical_to_reference": None if not v else f"{v['identical_text']}/{v['n_files']}",
                "threads": summary["threads"],
                "cpus": ",".join(map(str, summary["limits"]["cpus"])),
                "memory_gb": summary["limits"]["memory_gb"],
                "memory_mechanism": summary["limits"]["memory_mechanism"],
                "status": e.get("status"),
            }
        )
    return rows


def _fmt(value, digits: int) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}"


def summary_table_md(summary: dict) -> str:
    base = summary["baseline"]
    lim = summary["limits"]
    env = summary["environment"]
    mem = f"{lim['memory_gb']:g} GB ({lim['memory_mechanism']})" if lim["memory_gb"] else "none"
    cpus = ",".join(map(str, lim["cpus"]))
    lines = [
        f"# Peers side by side{' - ' + lim['label'] + '/' + lim['sut'] if lim.get('label') else ''}",
        "",
        f"{len(summary['files'])} files x {summary['repeats']} repeat(s), warmup {summary['warmup']}, "
        f"{summary['threads']} threads, CPUs {cpus}{' (pinned)' if lim['cpus_pinned'] else ''}, memory cap {mem}; "
        f"{env.get('cpu_model')} ({env.get('cpu_count')} CPUs); {summary['created']}.",
        "",
        "| implementation | p95 time (s) | p50 (s) | mean RTF | cold start (s) | peak RSS (MB) | WER vs manifest (%) | p50 ratio to " + base + " |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table_rows(summary):
        name = row["implementation"] + ("" if row["status"] == "ok" else f" ({row['status']})")
        lines.append(
            f"| {name} | {_fmt(row['p95_time_s'], 3)} | {_fmt(row['p50_s'], 3)} | {_fmt(row['mean_rtf'], 3)} | "
            f"{_fmt(row['cold_start_s'], 2)} | {_fmt(row['peak_rss_mb'], 0)} | {_fmt(row['wer_vs_manifest_pct'], 2)} | {_fmt(row['p50_ratio'], 2)} |"
        )
    n_ref = len(summary.get("wer_reference_files") or [])
    lines += [
        "",
        "- p95 time: the seed's Time column, the 95th percentile of end-to-end `t_total` (file to text) over every file and repeat; p50 the median.",
        f"- cold start: a fresh process from spawn to the transcript of `{summary['cold_start_file']}` (imports, model load, one run; page cache warm)"
        + (f", the median of {summary['cold_starts']} spawns per implementation taken in rounds; " if summary.get("cold_starts", 1) > 1 else "; ")
        + "peak RSS: the process's VmHWM at the end of the run.",
        f"- WER: corpus WER over the {n_ref} file(s) with a `reference_text` in MANIFEST.csv, both sides through {summary.get('wer_normalizer') or 'n/a'}.",
        f"- ratio: p50 / p50 of {base} (> 1 is slower)"
        + (f"; {summary['baseline_requested']} was not in the run, so the baseline is {base}." if base != summary["baseline_requested"] else "."),
    ]
    notes = []
    for name in summary["implementations_order"]:
        e = summary["implementations"][name]
        if e.get("error"):
            notes.append(f"- {name}: {e['error']}")
        failed = [f for f in e.get("failed_files") or []]
        if failed:
            notes.append(f"- {name}: failed on {', '.join(failed)}")
    if notes:
        lines += ["", "Failures:", "", *notes]
    agree = [
        (name, summary["implementations"][name]["vs_reference"])
        for name in summary["implementations_order"]
        if summary["implementations"][name].get("vs_reference")
    ]
    if agree:
        lines += ["", f"Transcripts against the reference (hf_generate; {summary.get('reference_transcripts')}):", ""]
        for name, v in agree:
            wer_ref = "n/a" if v["wer_vs_reference"] is None else f"{100 * v['wer_vs_reference']:.2f}%"
            diff = f"; differ on {', '.join(v['differing_files'])}" if v["differing_files"] else ""
            lines.append(f"- {name}: {v['identical_text']}/{v['n_files']} identical, WER vs reference {wer_ref}{diff}")
    return "\n".join(lines) + "\n"


def summary_table_csv(summary: dict) -> str:
    base = summary["baseline"]
    names = [c[1] for c in COLUMNS] + [f"p50_ratio_to_{base}", f"median_per_file_ratio_to_{base}", "load_s", "n_ok", "n_failed", "identical_to_reference", "threads", "cpus", "memory_gb", "memory_mechanism", "status"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in table_rows(summary):
        values = [row[c[1]] for c in COLUMNS] + [row["p50_ratio"], row["median_per_file_ratio"]] + [row[k] for k in names[9:]]
        writer.writerow(["" if v is None else (round(v, 6) if isinstance(v, float) else v) for v in values])
    return buf.getvalue()

"""The study's tables (DataFrames) from the records: per file, scaling, floors, peers, fidelity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from whisper_ort.measure.records import RECORD_FIELDS
from whisper_ort.study.load import _latest_date, load_compare, load_latency, load_reference
from whisper_ort.study.names import IMPL_ORDER, REFERENCE_IMPL, SCALING_STAGES, STAGES
from whisper_ort.study.paths import NATIVE, StudyPaths


def ok_records(df: pd.DataFrame | None) -> pd.DataFrame:
    """The records with status ok (an empty frame for None)."""
    if df is None or df.empty:
        return pd.DataFrame(columns=RECORD_FIELDS)
    return df[df["status"] == "ok"]


_ok = ok_records


def _p(values, q) -> float:
    arr = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], dtype=float)
    return float(np.percentile(arr, q)) if arr.size else float("nan")


def impl_sort_key(name: str):
    return (IMPL_ORDER.index(name) if name in IMPL_ORDER else len(IMPL_ORDER), name)


def per_file(df: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (implementation, threads, file) over its ok repeats: p50 / p95 / min of
    the total, RTF, ms per token, tokens, and the p50 of every stage (seconds)."""
    ok = _ok(df)
    cols = ["implementation", "threads", "file", "duration_s", "n", "t_total_p50", "t_total_p95", "t_total_min", "rtf_p50", "ms_per_token_p50", "n_tokens", "n_windows", *[f"{s}_p50" for s in STAGES], "t_other_p50"]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    keys = ok[["implementation", "threads", "file"]].fillna({"threads": -1})
    for (impl, threads, name), g in ok.groupby([keys["implementation"], keys["threads"], keys["file"]], sort=False):
        row = {
            "implementation": impl,
            "threads": int(threads) if threads >= 0 else None,
            "file": name,
            "duration_s": float(g["duration_s"].dropna().iloc[0]) if g["duration_s"].notna().any() else float("nan"),
            "n": len(g),
            "t_total_p50": _p(g["t_total"], 50),
            "t_total_p95": _p(g["t_total"], 95),
            "t_total_min": _p(g["t_total"], 0),
            "rtf_p50": _p(g["rtf"], 50),
            "ms_per_token_p50": _p(g["ms_per_token"], 50),
            "n_tokens": int(np.median(g["n_tokens"].fillna(0))),
            "n_windows": int(np.median(g["n_windows"].fillna(1))),
        }
        stage_sum = 0.0
        for s in STAGES:
            row[f"{s}_p50"] = _p(g[s], 50)
            stage_sum += 0.0 if math.isnan(row[f"{s}_p50"]) else row[f"{s}_p50"]
        row["t_other_p50"] = max(0.0, row["t_total_p50"] - stage_sum) if stage_sum > 0 else float("nan")
        rows.append(row)
    out = pd.DataFrame(rows, columns=cols)
    out["_k"] = out["implementation"].map(impl_sort_key)
    return out.sort_values(["_k", "threads", "file"]).drop(columns="_k").reset_index(drop=True)


def latency_overall(df: pd.DataFrame | None) -> dict:
    """p50 / p95 over every ok record, and the sums over files of the per-file medians."""
    ok = _ok(df)
    if ok.empty:
        return {}
    pf = per_file(ok)
    audio = float(pf["duration_s"].sum())
    total = float(pf["t_total_p50"].sum())
    return {
        "n_files": int(pf["file"].nunique()),
        "n_records": len(ok),
        "t_total_p50": _p(ok["t_total"], 50),
        "t_total_p95": _p(ok["t_total"], 95),
        "rtf_p50": _p(ok["rtf"], 50),
        "rtf_p95": _p(ok["rtf"], 95),
        "audio_s": audio,
        "sum_t_total_p50": total,
        "rtf_overall": total / audio if audio else float("nan"),
        "ms_per_token_p50": _p(ok["ms_per_token"], 50),
    }




def thread_scaling(df: pd.DataFrame | None) -> pd.DataFrame:
    """Per thread count and stage: the sum over files of each file's median time (s), the
    speedup against the fewest threads and the parallel efficiency (speedup per added
    thread: speedup * base / threads). Only files present at every thread count count."""
    ok = _ok(df)
    cols = ["threads", "stage", "time_s", "speedup", "efficiency", "n_files"]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    common = set.intersection(*(set(g["file"]) for _, g in ok.groupby("threads")))
    ok = ok[ok["file"].isin(common)]
    pf = per_file(ok)
    base_threads = int(pf["threads"].min())
    rows = []
    for stage in SCALING_STAGES:
        col = "t_total_p50" if stage == "t_total" else f"{stage}_p50"
        sums = pf.groupby("threads")[col].sum(min_count=1)
        if sums.isna().all():
            continue
        base = float(sums.loc[base_threads])
        for threads, value in sums.items():
            speedup = base / value if value else float("nan")
            rows.append({"threads": int(threads), "stage": stage, "time_s": float(value), "speedup": speedup, "efficiency": speedup * base_threads / int(threads), "n_files": len(common)})
    out = pd.DataFrame(rows, columns=cols)
    out["_k"] = out["stage"].map(SCALING_STAGES.index)
    return out.sort_values(["_k", "threads"]).drop(columns="_k").reset_index(drop=True)


def stage_floors(df: pd.DataFrame | None, floors: dict | None) -> pd.DataFrame:
    """Each bounded stage against its floor on this machine (docs/DESIGN.md, "Measuring honestly").

    encoder (per 30 s window) and decoder first step (per window) against FLOPs / GEMM
    peak; a decoder loop step (t_decoder_loop / tokens, over records with >= 4 tokens)
    against bytes read per step / read bandwidth. `of_floor` = floor / measured (1.0 = at
    the hardware bound), `x_floor` = measured / floor. The mha variant projects the
    cross-attention K/V in its encoder graph, not in the first step, so the sum of the two
    is the figure that compares across variants. `file, end to end`: t_total against the
    median file's floor (its windows and tokens at the FP32 floors above).
    """
    cols = ["stage", "unit", "measured_ms", "floor_ms", "of_floor", "x_floor", "bound", "n"]
    ok = _ok(df)
    if ok.empty or not floors:
        return pd.DataFrame(columns=cols)
    windows = ok["n_windows"].fillna(1).clip(lower=1)
    enc = (ok["t_encoder"] / windows).dropna()
    first = (ok["t_decoder_first"] / windows).dropna()
    many = ok[ok["n_tokens"].fillna(0) >= 4]
    step = (many["t_decoder_loop"] / many["n_tokens"]).dropna()
    peak, bw = floors["gemm_peak_gflops"], floors["bandwidth_gbs"]
    enc_gflop = floors["encoder_flops"]["total"] / 1e9
    first_gflop = floors["decoder_first_flops"]["total"] / 1e9
    step_mb = floors["decoder_step_bytes"]["total"] / 1e6
    rows = [
        ("encoder", "ms / 30 s window", enc, floors["encoder_floor_s"], f"compute: {enc_gflop:.1f} GFLOP at {peak:.1f} GFLOP/s"),
        ("decoder first step", "ms / window", first, floors["decoder_first_floor_s"], f"compute: {first_gflop:.1f} GFLOP at {peak:.1f} GFLOP/s"),
        ("encoder + first step", "ms / window", ((ok["t_encoder"] + ok["t_decoder_first"]) / windows).dropna(),
         floors["encoder_floor_s"] + floors["decoder_first_floor_s"], f"compute: {enc_gflop + first_gflop:.1f} GFLOP at {peak:.1f} GFLOP/s"),
        ("decoder loop step", "ms / token", step, floors["decoder_step_floor_s"], f"memory: {step_mb:.0f} MB read at {bw:.1f} GB/s"),
    ]
    if (ok["variant"] == "mha").all():  # bounded logits: the int8 head replaces the FP32 projection's reads
        from whisper_ort.build.decoder_graph import EXACT_DIMS
        from whisper_ort.measure.hardware import bounded_head_bytes

        bounded = floors["decoder_step_bytes"]["total"] - floors["decoder_step_bytes"]["output_projection"] + bounded_head_bytes(exact_dims=EXACT_DIMS)
        rows.append(("decoder loop step, bounded logits", "ms / token", step, bounded / (bw * 1e9), f"memory: {bounded / 1e6:.0f} MB read at {bw:.1f} GB/s"))
    # A whole file: its windows' encoder + first step and every token's FP32 step at their
    # floors (audio decode and log-mel counted as free): the end-to-end bound.
    file_floor = windows * (floors["encoder_floor_s"] + floors["decoder_first_floor_s"]) + ok["n_tokens"].fillna(0) * floors["decoder_step_floor_s"]
    rows.append(("file, end to end", "ms / file", ok["t_total"].dropna(), float(file_floor.median()), "the stages above at their FP32 floors, audio + log-mel free"))
    out = []
    for stage, unit, values, floor_s, bound in rows:
        measured = _p(values, 50) * 1e3
        floor_ms = floor_s * 1e3
        out.append({"stage": stage, "unit": unit, "measured_ms": measured, "floor_ms": floor_ms, "of_floor": floor_ms / measured if measured else float("nan"), "x_floor": measured / floor_ms if floor_ms else float("nan"), "bound": bound, "n": int(values.size)})
    return pd.DataFrame(out, columns=cols)


def beaten_floors(table: pd.DataFrame) -> list[str]:
    """The compute-bound stages of a stage_floors table whose p50 beats its floor, which no
    run can: the GEMM peak was measured low (a busy minute on a shared machine). Only
    compute bounds are checked: speculative decoding puts several tokens in one forward, so
    ms per token may rightly go below the one-token read floor (the goal of issue 17), and
    the mha variant's first step sits below its floor by construction (its encoder projects
    the cross K/V)."""
    if table.empty:
        return []
    mha = "decoder loop step, bounded logits" in set(table["stage"])
    return [r.stage for r in table.itertuples()
            if r.bound.startswith("compute:") and not (mha and r.stage == "decoder first step") and r.x_floor < 1]


def peers_table(df: pd.DataFrame | None, summary: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per file, per implementation) for compare records: p50 total per file and its ratio
    to whisper_ort's (> 1: the peer is slower); per implementation the median of the files'
    p50, the median RTF, the encoder and decoder medians, the geometric mean of the ratios,
    and (from compare's summary, when given) cold start and peak RSS."""
    pf = per_file(df)
    file_cols = ["file", "duration_s", "implementation", "t_total_p50", "ratio"]
    impl_cols = ["implementation", "n_files", "n_failed", "t_total_p50", "rtf_p50", "t_encoder_p50", "t_decoder_p50", "ratio_geomean", "cold_start_s", "peak_rss_mb", "threads"]
    if pf.empty:
        return pd.DataFrame(columns=file_cols), pd.DataFrame(columns=impl_cols)
    native = pf[pf["implementation"] == NATIVE].set_index("file")["t_total_p50"]
    pf = pf.copy()
    pf["ratio"] = [row.t_total_p50 / native[row.file] if row.file in native.index and native[row.file] else float("nan") for row in pf.itertuples()]
    files = pf[file_cols].copy()
    files["_k"] = files["implementation"].map(impl_sort_key)
    files = files.sort_values(["file", "_k"]).drop(columns="_k").reset_index(drop=True)

    ok_all = _ok(df)
    failed = df[df["status"] != "ok"].groupby("implementation")["file"].nunique()
    extra = (summary or {}).get("implementations") or {}
    impl_rows = []
    for impl, g in pf.groupby("implementation"):
        ok = ok_all[ok_all["implementation"] == impl]
        ratios = g["ratio"].dropna()
        ratios = ratios[ratios > 0]
        decoder = ok[["t_decoder_first", "t_decoder_loop"]].sum(axis=1, min_count=1)
        e = extra.get(impl) or {}
        impl_rows.append({
            "implementation": impl,
            "n_files": int(g["file"].nunique()),
            "n_failed": int(failed.get(impl, 0)),
            "t_total_p50": float(np.median(g["t_total_p50"])),
            "rtf_p50": _p(ok["rtf"], 50),
            "t_encoder_p50": _p(ok["t_encoder"], 50),
            "t_decoder_p50": _p(decoder, 50),
            "ratio_geomean": float(np.exp(np.log(ratios).mean())) if len(ratios) else float("nan"),
            "cold_start_s": e.get("cold_start_s"),
            "peak_rss_mb": e.get("peak_rss_mb"),
            "threads": ",".join(str(int(t)) for t in sorted(ok["threads"].dropna().unique())),
        })
    impls = pd.DataFrame(impl_rows, columns=impl_cols)
    impls["_k"] = impls["implementation"].map(impl_sort_key)
    return files, impls.sort_values("_k").drop(columns="_k").reset_index(drop=True)


def texts(df: pd.DataFrame | None) -> dict[str, dict[str, str]]:
    """{implementation: {file: text}} from the ok record of the lowest repeat."""
    ok = _ok(df)
    out: dict[str, dict[str, str]] = {}
    if ok.empty:
        return out
    for row in ok.sort_values(["implementation", "file", "repeat"]).itertuples():
        out.setdefault(row.implementation, {}).setdefault(row.file, (row.text or "").strip())
    return out


def gather_texts(paths: StudyPaths) -> dict[str, dict[str, str]]:
    """Transcripts per implementation from every record set on disk: compare's records, the
    reference file (which wins for hf_generate) and the latency sweep (which wins for whisper_ort)."""
    out: dict[str, dict[str, str]] = {}
    reference = load_reference(paths)
    compare, _ = load_compare(paths)
    latency, _ = load_latency(paths, NATIVE)
    for source in (compare, reference, latency):  # later sources win: the reference file for hf_generate, the sweep for whisper_ort
        for impl, files in texts(source).items():
            out.setdefault(impl, {}).update(files)
    return out


def fidelity(all_texts: dict[str, dict[str, str]], references: dict[str, str] | None = None, spelling_dirs=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs, ground truth).

    pairs: each implementation against the reference (hf_generate) and whisper_ort against
    faster_whisper: files compared, identical texts (exactly), normalized WER.
    ground truth: every implementation against MANIFEST.csv's reference_text (normalized).
    """
    from whisper_ort.measure import wer as wer_mod

    pair_cols = ["a", "b", "n_files", "identical", "errors", "ref_words", "wer"]
    gt_cols = ["implementation", "n_files", "errors", "ref_words", "wer"]
    pairs = []
    impls = sorted(all_texts, key=impl_sort_key)
    wanted = [(REFERENCE_IMPL, i) for i in impls if i != REFERENCE_IMPL and REFERENCE_IMPL in all_texts]
    if NATIVE in all_texts and "faster_whisper" in all_texts:
        wanted.append(("faster_whisper", NATIVE))
    for a, b in wanted:
        shared = sorted(set(all_texts[a]) & set(all_texts[b]))
        errors = words = identical = 0
        for f in shared:
            m = wer_mod.measures(all_texts[a][f], all_texts[b][f], spelling_dirs=spelling_dirs)
            errors += m["substitutions"] + m["deletions"] + m["insertions"]
            words += m["ref_words"]
            identical += all_texts[a][f] == all_texts[b][f]
        pairs.append({"a": a, "b": b, "n_files": len(shared), "identical": identical, "errors": errors, "ref_words": words, "wer": errors / words if words else float("nan")})
    gt = []
    for impl in impls:
        shared = sorted(set(all_texts[impl]) & set(references or {}))
        errors = words = 0
        for f in shared:
            m = wer_mod.measures(references[f], all_texts[impl][f], spelling_dirs=spelling_dirs)
            errors += m["substitutions"] + m["deletions"] + m["insertions"]
            words += m["ref_words"]
        if shared:
            gt.append({"implementation": impl, "n_files": len(shared), "errors": errors, "ref_words": words, "wer": errors / words if words else float("nan")})
    return pd.DataFrame(pairs, columns=pair_cols), pd.DataFrame(gt, columns=gt_cols)


def file_diffs(all_texts: dict[str, dict[str, str]], a: str, b: str, spelling_dirs=None) -> pd.DataFrame:
    """Per file of two implementations: identical?, normalized WER of b against a, word diff."""
    from whisper_ort.measure import wer as wer_mod
    from whisper_ort.measure.diff import unified_diff

    cols = ["file", "identical", "wer", "errors", "words", "diff"]
    if a not in all_texts or b not in all_texts:
        return pd.DataFrame(columns=cols)
    rows = []
    for f in sorted(set(all_texts[a]) & set(all_texts[b])):
        ta, tb = all_texts[a][f], all_texts[b][f]
        m = wer_mod.measures(ta, tb, spelling_dirs=spelling_dirs)
        rows.append({"file": f, "identical": ta == tb, "wer": m["wer"], "errors": m["substitutions"] + m["deletions"] + m["insertions"], "words": m["ref_words"], "diff": "" if ta == tb else unified_diff(f, ta, tb, a, b)})
    return pd.DataFrame(rows, columns=cols)


def run_note(df: pd.DataFrame | None = None, summary: dict | None = None, extra: str = "") -> str:
    """One line for a plot's subtitle: CPU, threads, repeats / warmup, date of the run."""
    env = (summary or {}).get("environment") or {}
    parts = ["whisper-base FP32"]
    if env.get("cpu_model"):
        parts.append(f"{env['cpu_model']} ({env.get('cpu_count', '?')} CPUs)")
    ok = _ok(df)
    if not ok.empty and ok["threads"].notna().any():
        parts.append(f"{','.join(str(int(t)) for t in sorted(ok['threads'].dropna().unique()))} thread(s)")
    if summary and summary.get("repeats") is not None:
        parts.append(f"{summary['repeats']} repeat(s) after {summary.get('warmup', '?')} warmup")
    if extra:
        parts.append(extra)
    date = _latest_date(summary) if summary else None
    if date:
        parts.append(date[:10])
    return " · ".join(parts)


# ---------------------------------------------------------------- long audio, serving


LONGFORM_COLUMNS = ["setting", "implementation", "audio_s_per_s", "wer", "elapsed_s", "n_windows", "throughput_vs_faster_whisper"]
SERVING_COLUMNS = ["server", "clients", "throughput_rps", "audio_s_per_s", "p50_s", "p95_s", "requests", "ok", "failed"]


def longform_table(result: dict | None) -> pd.DataFrame:
    """One row per setting of longform.json, in its order; implementation = the setting's
    first word (whisper_ort or faster_whisper); wer a fraction."""
    rows = []
    for r in (result or {}).get("rows") or []:
        setting = str(r.get("setting", "?"))
        rows.append({"setting": setting, "implementation": setting.split()[0] if setting.split() else "?",
                     **{k: r.get(k) for k in LONGFORM_COLUMNS[2:]}})
    df = pd.DataFrame(rows, columns=LONGFORM_COLUMNS)
    for name in ("audio_s_per_s", "wer", "elapsed_s", "throughput_vs_faster_whisper"):
        df[name] = pd.to_numeric(df[name], errors="coerce")
    return df


def serving_table(data: dict | None) -> pd.DataFrame:
    """One row per server and client count of serving.json (its requests left out), sorted by
    server (in the file's order) and clients."""
    rows = []
    for order, res in enumerate((data or {}).get("results") or []):
        for lv in res.get("levels") or []:
            rows.append({"server": str(res.get("server", "?")), "_order": order, **{k: lv.get(k) for k in SERVING_COLUMNS[1:]}})
    df = pd.DataFrame(rows, columns=["_order", *SERVING_COLUMNS])
    for name in SERVING_COLUMNS[1:]:
        df[name] = pd.to_numeric(df[name], errors="coerce")
    return df.sort_values(["_order", "clients"], kind="stable").drop(columns="_order").reset_index(drop=True)


def _cpu_note(cpu: str | None, cores=None) -> str:
    if cpu:
        return f"{cpu}" + (f" ({cores} CPUs)" if cores else "")
    from whisper_ort.measure.environment import cpu_model

    return f"{cpu_model()} (this machine's: the record does not name its CPU)"


def _caption(cpu: str, record: dict, *parts: tuple[str, object]) -> str:
    """whisper-base FP32 · the CPU · each (format, value) whose value is there · the date."""
    out = ["whisper-base FP32", cpu] + [fmt.format(value) for fmt, value in parts if value not in (None, "", [])]
    date = _latest_date(record)
    return " · ".join(out + ([date[:10]] if date else []))


def longform_note(result: dict | None) -> str:
    """A plot's caption for longform.json: CPU, threads, audio, rounds, date."""
    r = result or {}
    minutes = None if r.get("duration_s") is None else float(r["duration_s"]) / 60
    return _caption(_cpu_note(r.get("cpu")), r, ("{} thread(s)", r.get("threads")), ("{:.1f} min of audio", minutes),
                    ("median of {} round(s)", r.get("rounds")), ("WER vs {}", r.get("reference_kind")))


def serving_note(data: dict | None) -> str:
    """A plot's caption for serving.json: CPU, threads, seconds of load per level, files."""
    meta = (data or {}).get("meta") or {}
    files = len(meta["files"]) if meta.get("files") else None
    return _caption(_cpu_note(meta.get("cpu"), meta.get("cores")), meta, ("{} thread(s) per server", meta.get("threads")),
                    ("{:g} s of load per level", meta.get("duration_s")), ("{} short file(s) in turn", files))

"""The study's plots (PNG and SVG, deterministic), drawn from the tables' frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from whisper_ort.study.names import (
    IMPL_COLORS,
    PLOT_FORMATS,
    SCALING_STAGES,
    SERVER_COLORS,
    STAGE_COLORS,
    STAGE_LABELS,
    STAGES,
)
from whisper_ort.study.paths import NATIVE, resolve
from whisper_ort.study.tables import _ok, impl_sort_key, longform_table, peers_table, per_file, serving_table


def _figure(width=8.0, height=4.5, ncols=1):
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "whisper-ort"  # stable ids: the same data, the same SVG
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text in the SVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols) if ncols > 1 else fig.subplots()
    return fig, axes


def save(fig, plots_dir: str | Path, name: str, formats=PLOT_FORMATS) -> dict[str, Path]:
    """Write the figure as <plots_dir>/<name>.png (150 dpi) and .svg; return the paths."""
    plots_dir = resolve(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for fmt_ in formats:
        path = plots_dir / f"{name}.{fmt_}"
        metadata = {"Date": None} if fmt_ == "svg" else {"Software": None}
        fig.savefig(path, dpi=150, metadata=metadata)
        out[fmt_] = path
    return out


def show(saved: dict[str, Path] | None) -> None:
    """Show a saved plot's PNG in a notebook (what you see is the file on disk)."""
    if not saved:
        print("nothing to plot")
        return
    from IPython.display import Image, display

    display(Image(filename=str(saved["png"])))


def _finish(fig, title: str, note: str = "") -> None:
    """The title on top, the run's description as a caption at the bottom left."""
    fig.suptitle(title, fontsize=12, fontweight="bold")
    if note:
        fig.supxlabel(note, fontsize=7.5, color="#555555", x=0.01, ha="left")


def _legend_outside(ax, **kw) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, **kw)


def _plain_log_axis(axis) -> None:
    """Log-scale tick labels as plain numbers (0.5, 1, 2) rather than powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    lo, hi = sorted(abs(v) for v in axis.get_view_interval())
    narrow = hi / max(lo, 1e-12) < 12
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0) if narrow else (1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _threads_label(df) -> str:
    ok = _ok(df)
    t = sorted(int(x) for x in ok["threads"].dropna().unique()) if not ok.empty else []
    return ",".join(map(str, t)) or "?"


def plot_latency_per_file(df: pd.DataFrame, plots_dir, name="latency_per_file", note: str = "") -> dict | None:
    """Horizontal bars: each file's p50 end-to-end time, a whisker to its p95, the audio
    duration beside the name; one bar per implementation when there are several."""
    pf = per_file(df)
    if pf.empty:
        return None
    dur = pf.groupby("file")["duration_s"].first()
    files = sorted(dur.index, key=lambda f: (dur[f], f))
    impls = sorted(pf["implementation"].unique(), key=impl_sort_key)
    fig, ax = _figure(9.5, max(2.8, 1.4 + 0.38 * len(files) * max(1, len(impls)) ** 0.7))
    height = 0.8 / len(impls)
    y = np.arange(len(files))
    for i, impl in enumerate(impls):
        sub = pf[pf["implementation"] == impl].set_index("file").reindex(files)
        pos = y - 0.4 + height * (i + 0.5)
        p50, p95 = sub["t_total_p50"].to_numpy(), sub["t_total_p95"].to_numpy()
        ax.barh(pos, p50, height=height * 0.9, color=IMPL_COLORS.get(impl), label=f"{impl}: p50")
        ax.errorbar(p95, pos, xerr=[p95 - p50, np.zeros_like(p95)], fmt="|", color="#222222", ecolor="#222222", elinewidth=1, markersize=8, label="p95" if i == 0 else None)
        for yy, v in zip(pos, p50, strict=True):
            if np.isfinite(v):
                ax.annotate(f"{v:.2f} s", (v, yy), textcoords="offset points", xytext=(-3, 0), ha="right", va="center", fontsize=7, color="white")
    ax.set_yticks(y, [f"{f}\n{dur[f]:.1f} s of audio" for f in files], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("end-to-end latency, warm (s)")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(ax)
    _finish(fig, f"Latency per file, {_threads_label(df)} thread(s): p50 bar, p95 whisker", note)
    return save(fig, plots_dir, name)


def plot_rtf_vs_duration(df: pd.DataFrame, plots_dir, name="rtf_vs_duration", note: str = "") -> dict | None:
    """Real-time factor (processing time / audio time) of every record against the audio
    duration: short files pay for a whole 30 s encoder window."""
    ok = _ok(df)
    if ok.empty:
        return None
    fig, ax = _figure(8.5, 4.6)
    for impl in sorted(ok["implementation"].unique(), key=impl_sort_key):
        sub = ok[ok["implementation"] == impl]
        ax.scatter(sub["duration_s"], sub["rtf"], s=22, alpha=0.7, color=IMPL_COLORS.get(impl), label=f"{impl}: one repeat")
        pf = per_file(sub).sort_values("duration_s")
        if len(pf) > 1:
            ax.plot(pf["duration_s"], pf["rtf_p50"], lw=1.2, color=IMPL_COLORS.get(impl), alpha=0.8, label=f"{impl}: p50 per file")
    ax.axhline(1.0, color="#444444", ls="--", lw=0.9, label="real time (RTF = 1)")
    lo, hi = float(ok["rtf"].min()), float(ok["rtf"].max())
    if hi / max(lo, 1e-9) > 6:
        ax.set_yscale("log")
        _plain_log_axis(ax.yaxis)
    else:
        ax.set_ylim(0, max(1.1, hi * 1.15))
    ax.set_xlim(0, float(ok["duration_s"].max()) * 1.08 + 0.5)
    ax.set_xlabel("audio duration (s)")
    ax.set_ylabel("RTF = processing time / audio time")
    ax.grid(alpha=0.3, which="major")
    _legend_outside(ax)
    _finish(fig, "Real-time factor against audio duration (below 1: faster than real time)", note)
    return save(fig, plots_dir, name)


def plot_latency_repeats(df: pd.DataFrame, plots_dir, name="latency_repeats", note: str = "") -> dict | None:
    """End-to-end time of every repeat, per file, against that file's median: how stable
    the warm latency is on a shared machine."""
    ok = _ok(df)
    if ok.empty:
        return None
    ok = ok.copy()
    ok["rel"] = 100 * (ok["t_total"] / ok.groupby(["implementation", "file"])["t_total"].transform("median") - 1)
    files = sorted(ok["file"].unique())
    impls = sorted(ok["implementation"].unique(), key=impl_sort_key)
    fig, ax = _figure(9.5, 4.4)
    markers = "osD^v<>P*X"
    palette = ["#2f6db5", "#e6a23c", "#66a182", "#d1495b", "#8c6bb1", "#8c8c8c", "#222222", "#7fb3e6", "#b5651d", "#17becf"]
    for j, impl in enumerate(impls):
        sub = ok[ok["implementation"] == impl]
        for rep, g in sub.groupby("repeat"):
            x = np.array([files.index(f) for f in g["file"]]) + (j - (len(impls) - 1) / 2) * 0.15
            label = f"repeat {int(rep)}" if len(impls) == 1 else f"{impl}, repeat {int(rep)}"
            ax.scatter(x, g["rel"], s=30, alpha=0.9, marker=markers[j % len(markers)], color=palette[int(rep) % len(palette)], label=label)
    ax.axhline(0, color="#444444", lw=0.8)
    ax.set_xticks(range(len(files)), files, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("latency against the file's p50 (%)")
    ax.grid(axis="y", alpha=0.3)
    _legend_outside(ax, ncols=1 if ok["repeat"].nunique() * len(impls) <= 12 else 2)
    title = "Latency over repeats: each run against its file's median" + (f" ({impls[0]})" if len(impls) == 1 else "")
    _finish(fig, title, note)
    return save(fig, plots_dir, name)


def plot_thread_scaling(scaling: pd.DataFrame, plots_dir, name="thread_scaling", note: str = "", cores: int | None = None) -> dict | None:
    """Left: time per stage (sum over files, s) by thread count; right: speedup against the
    fewest threads, the ideal line, and the parallel efficiency at the most threads."""
    if scaling is None or scaling.empty:
        return None
    fig, (ax1, ax2) = _figure(12, 4.8, ncols=2)
    threads = sorted(int(t) for t in scaling["threads"].unique())
    base = threads[0]
    for stage in SCALING_STAGES:
        sub = scaling[scaling["stage"] == stage].sort_values("threads")
        if sub.empty:
            continue
        style = {"color": STAGE_COLORS[stage], "marker": "o", "lw": 2.4 if stage == "t_total" else 1.5}
        ax1.plot(sub["threads"], sub["time_s"], label=STAGE_LABELS[stage], **style)
        last = sub.iloc[-1]
        ax2.plot(sub["threads"], sub["speedup"], label=f"{STAGE_LABELS[stage]} ({100 * last['efficiency']:.0f} % eff. at {int(last['threads'])})", **style)
    ax2.plot(threads, [t / base for t in threads], ls="--", color="#888888", lw=1, label="ideal: linear")
    for ax in (ax1, ax2):
        ax.set_xticks(threads)
        ax.set_xlabel("ONNX Runtime intra-op threads")
        ax.grid(alpha=0.3)
        if cores and cores < max(threads):
            ax.axvspan(cores + 0.5, max(threads) + 0.5, color="#eeeeee", zorder=0, label=f"more threads than the {cores} CPUs")
    ax1.set_yscale("log")
    _plain_log_axis(ax1.yaxis)
    ax1.set_ylabel("time, sum over files of each file's p50 (s)")
    ax1.set_title("Time per stage", fontsize=10)
    ax2.set_ylabel(f"speedup against {base} thread(s) (x)")
    ax2.set_ylim(bottom=0)
    ax2.set_title("Speedup and parallel efficiency", fontsize=10)
    _legend_outside(ax2)
    _finish(fig, "Thread scaling, each setting in a fresh process", note)
    return save(fig, plots_dir, name)


def _stacked_stage_bars(ax, frame, height: float, fontsize: int) -> None:
    """One horizontal bar per row of frame, stacked by stage p50 (s), its total written at the end."""
    left = np.zeros(len(frame))
    for stage in (*STAGES, "t_other"):
        values = frame[f"{stage}_p50"].fillna(0).to_numpy()
        if not values.any():
            continue
        ax.barh(range(len(frame)), values, left=left, color=STAGE_COLORS[stage], label=STAGE_LABELS[stage], height=height)
        left += values
    for i, total in enumerate(frame["t_total_p50"]):
        ax.annotate(f"{total:.2f} s", (left[i], i), textcoords="offset points", xytext=(4, 0), va="center", fontsize=fontsize)
    ax.set_xlim(0, left.max() * 1.12)


def plot_stage_breakdown(df: pd.DataFrame, plots_dir, name="stage_breakdown", note: str = "") -> dict | None:
    """Stacked horizontal bars: each file's p50 time per stage (s)."""
    ok = _ok(df)
    pf = per_file(ok[ok["implementation"] == NATIVE])
    if pf.empty:
        return None
    pf = pf.sort_values(["duration_s", "file"]).reset_index(drop=True)
    fig, ax = _figure(10, max(2.8, 1.5 + 0.42 * len(pf)))
    _stacked_stage_bars(ax, pf, height=0.7, fontsize=7)
    ax.set_yticks(range(len(pf)), [f"{r.file}\n{r.duration_s:.1f} s audio, {r.n_tokens} tokens" for r in pf.itertuples()], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time, p50 over repeats (s)")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(ax)
    _finish(fig, "Where the time goes, per file (whisper_ort)", note)
    return save(fig, plots_dir, name)


def plot_ms_per_token(df: pd.DataFrame, plots_dir, floors: dict | None = None, name="ms_per_token", note: str = "") -> dict | None:
    """Decoder time per generated token for each file: the whole decoder (first step
    included) and the loop alone, with the memory-bandwidth floor of one step."""
    ok = _ok(df)
    ok = ok[(ok["implementation"] == NATIVE) & (ok["n_tokens"].fillna(0) > 0)]
    if ok.empty:
        return None
    ok = ok.assign(loop_ms=1e3 * ok["t_decoder_loop"] / ok["n_tokens"])
    pf = per_file(ok).sort_values(["duration_s", "file"]).reset_index(drop=True)
    loop = ok.groupby("file")["loop_ms"].median().reindex(pf["file"]).to_numpy()
    fig, ax = _figure(10, max(2.8, 1.5 + 0.45 * len(pf)))
    y = np.arange(len(pf))
    ax.barh(y - 0.18, pf["ms_per_token_p50"], height=0.36, color=STAGE_COLORS["t_decoder_first"], label="(first step + loop) / tokens")
    ax.barh(y + 0.18, loop, height=0.36, color=STAGE_COLORS["t_decoder_loop"], label="loop / tokens")
    if floors:
        ax.axvline(1e3 * floors["decoder_step_floor_s"], color="#222222", ls="--", lw=1.2,
                   label=f"floor of one step:\n{floors['decoder_step_bytes']['total'] / 1e6:.0f} MB / {floors['bandwidth_gbs']:.1f} GB/s = {1e3 * floors['decoder_step_floor_s']:.1f} ms")
    ax.set_yticks(y, [f"{r.file}\n{r.n_tokens} tokens" for r in pf.itertuples()], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("decoder time per generated token, p50 (ms)")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(ax)
    _finish(fig, "Decoder cost per generated token", note)
    return save(fig, plots_dir, name)


def plot_stage_floors(table: pd.DataFrame, plots_dir, name="stage_floors", note: str = "") -> dict | None:
    """Measured p50 against the hardware floor for each bounded stage (ms, log scale),
    labelled with how far above the floor it is."""
    if table is None or table.empty:
        return None
    fig, ax = _figure(10, 3.9)
    y = np.arange(len(table))
    ax.barh(y - 0.2, table["measured_ms"], height=0.38, color="#d1495b", label="measured, p50")
    ax.barh(y + 0.2, table["floor_ms"], height=0.38, color="#9e9e9e", label="floor: FLOPs / GEMM peak\nor bytes / read bandwidth")
    for i, row in enumerate(table.itertuples()):
        ax.annotate(f"{row.measured_ms:.1f} ms: {row.x_floor:.2f}x the floor", (row.measured_ms, i - 0.2), textcoords="offset points", xytext=(4, 0), va="center", fontsize=8)
        ax.annotate(f"{row.floor_ms:.1f} ms ({row.bound})", (row.floor_ms, i + 0.2), textcoords="offset points", xytext=(4, 0), va="center", fontsize=7, color="#555555")
    ax.set_yticks(y, [f"{r.stage}\n({r.unit})" for r in table.itertuples()], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    values = table[["measured_ms", "floor_ms"]].to_numpy(dtype=float)
    ax.set_xlim(np.nanmin(values) / 2, np.nanmax(values) * 10)
    _plain_log_axis(ax.xaxis)
    ax.set_xlabel("time (ms, log scale)")
    ax.grid(axis="x", alpha=0.3, which="major")
    _legend_outside(ax)
    _finish(fig, "Each stage against its floor on this machine", note)
    return save(fig, plots_dir, name)


def plot_peers_latency(df: pd.DataFrame, plots_dir, name="peers_latency", note: str = "") -> dict | None:
    """Grouped horizontal bars: p50 end-to-end time per file (shortest audio on top) for
    every implementation."""
    files_t, impls_t = peers_table(df)
    if files_t.empty:
        return None
    impls = list(impls_t["implementation"])
    dur = files_t.groupby("file")["duration_s"].first()
    files = sorted(dur.index, key=lambda f: (dur[f], f))
    fig, ax = _figure(10, max(3.0, 1.4 + 0.16 * len(files) * len(impls)))
    height = 0.84 / len(impls)
    y = np.arange(len(files))
    for i, impl in enumerate(impls):
        sub = files_t[files_t["implementation"] == impl].set_index("file").reindex(files)
        ax.barh(y - 0.42 + height * (i + 0.5), sub["t_total_p50"], height=height * 0.92, color=IMPL_COLORS.get(impl), label=impl)
    ax.set_yticks(y, [f"{f}\n{dur[f]:.1f} s audio" for f in files], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("end-to-end latency, warm, p50 (s)")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(ax)
    _finish(fig, "whisper_ort and its peers per file (same threads, greedy, FP32)", note)
    return save(fig, plots_dir, name)


def plot_peers_ratio(df: pd.DataFrame, plots_dir, name="peers_ratio", note: str = "") -> dict | None:
    """Each peer's time over whisper_ort's, per file (dots) and the geometric mean (bar);
    above 1 the peer is slower."""
    files_t, impls_t = peers_table(df)
    impls_t = impls_t[impls_t["implementation"] != NATIVE].reset_index(drop=True)
    if impls_t.empty or files_t["ratio"].isna().all():
        return None
    fig, ax = _figure(9.5, max(2.8, 1.6 + 0.6 * len(impls_t)))
    y = np.arange(len(impls_t))
    ax.barh(y, impls_t["ratio_geomean"], color=[IMPL_COLORS.get(i, "#999999") for i in impls_t["implementation"]], alpha=0.6, height=0.6, label="geometric mean over files")
    for i, impl in enumerate(impls_t["implementation"]):
        r = files_t[files_t["implementation"] == impl]["ratio"].dropna()
        ax.scatter(r, np.full(len(r), i), color="#222222", s=14, zorder=3, label="one file" if i == 0 else None)
        g = impls_t.loc[i, "ratio_geomean"]
        if np.isfinite(g):
            ax.annotate(f"{g:.2f}x", (g, i), textcoords="offset points", xytext=(0, 12), ha="center", fontsize=8, fontweight="bold")
    ax.axvline(1.0, color="#d1495b", lw=1.4, label="whisper_ort = 1")
    ax.set_yticks(y, list(impls_t["implementation"]))
    ax.invert_yaxis()
    ax.set_xscale("log")
    r_all = files_t["ratio"].dropna()
    ax.set_xlim(min(0.8, r_all.min() * 0.8), max(1.25, r_all.max() * 1.25))
    _plain_log_axis(ax.xaxis)
    ax.set_xlabel("peer latency / whisper_ort latency (x, log scale; above 1: the peer is slower)")
    ax.grid(axis="x", alpha=0.3, which="major")
    _legend_outside(ax)
    _finish(fig, "Peers against whisper_ort, per file and overall", note)
    return save(fig, plots_dir, name)


def plot_peers_stages(df: pd.DataFrame, plots_dir, name="peers_stages", note: str = "") -> dict | None:
    """Stacked bars per implementation: the mean over files of each file's p50 per stage
    (what each peer can time; CTranslate2 has no separate first decoder step)."""
    pf = per_file(df)
    if pf.empty:
        return None
    impls = sorted(pf["implementation"].unique(), key=impl_sort_key)
    means = pf.groupby("implementation")[[f"{s}_p50" for s in STAGES] + ["t_other_p50", "t_total_p50"]].mean().reindex(impls)
    fig, ax = _figure(10, max(2.8, 1.5 + 0.5 * len(impls)))
    _stacked_stage_bars(ax, means, height=0.65, fontsize=8)
    ax.set_yticks(range(len(impls)), impls)
    ax.invert_yaxis()
    ax.set_xlabel(f"time per file, mean over {pf['file'].nunique()} file(s) of each file's p50 (s)")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(ax)
    _finish(fig, "Where each implementation spends its time", note)
    return save(fig, plots_dir, name)


def plot_wer(pairs: pd.DataFrame, ground: pd.DataFrame, plots_dir, name="wer", note: str = "") -> dict | None:
    """Normalized WER (%): implementations against each other (hypothesis vs reference)
    and each against the ground truth of MANIFEST.csv."""
    if (pairs is None or pairs.empty) and (ground is None or ground.empty):
        return None
    fig, (ax1, ax2) = _figure(12, 3.9, ncols=2)
    panels = (
        (ax1, pairs, "b", lambda r: f"{r.b}\nvs {r.a}", "Between implementations"),
        (ax2, ground, "implementation", lambda r: r.implementation, "Against the ground truth (MANIFEST.csv)"),
    )
    for ax, table, color_col, label, title in panels:
        ax.set_title(title, fontsize=10)
        if table is None or table.empty:
            ax.text(0.5, 0.5, "no transcripts to compare", ha="center", va="center", transform=ax.transAxes, color="#555555")
            ax.set_axis_off()
            continue
        values = 100 * table["wer"].fillna(0).to_numpy(dtype=float)
        colors = [IMPL_COLORS.get(getattr(r, color_col), "#999999") for r in table.itertuples()]
        ax.barh(range(len(table)), values, color=colors, height=0.6)
        for i, (v, r) in enumerate(zip(values, table.itertuples(), strict=True)):
            ax.annotate(f"{v:.1f} % over {r.n_files} file(s)", (v, i), textcoords="offset points", xytext=(4, 0), va="center", fontsize=8)
        ax.set_yticks(range(len(table)), [label(r) for r in table.itertuples()], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(5.0, values.max() * 1.8))
        ax.set_xlabel("word error rate, normalized text (%)")
        ax.grid(axis="x", alpha=0.3)
    _finish(fig, "Transcript fidelity", note)
    return save(fig, plots_dir, name)


def _place_labels(ax, xs, ys, labels, fontsize=7.0) -> None:
    """Each point's label beside it, at the first of a few offsets where its (estimated) box
    does not overlap an earlier label's; the points with the highest x first."""
    fig = ax.figure
    fig.canvas.draw()  # the layout the boxes are estimated in
    to_px = ax.transData.transform
    pt = fig.dpi / 72.0
    offsets = [(4, 2, "left"), (4, -11, "left"), (-4, 2, "right"), (-4, -11, "right"), (4, 10, "left"), (-4, 10, "right"), (4, -19, "left"), (-4, -19, "right")]
    placed: list[tuple[float, float, float, float]] = []
    for i in sorted(range(len(xs)), key=lambda i: (-xs[i], ys[i])):
        px, py = to_px((xs[i], ys[i]))
        w, h = 0.56 * fontsize * len(labels[i]) * pt, 1.2 * fontsize * pt
        chosen = offsets[0]
        for dx, dy, ha in offsets:
            x0 = px + dx * pt - (w if ha == "right" else 0)
            y0 = py + dy * pt
            box = (x0, y0, x0 + w, y0 + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                chosen = (dx, dy, ha)
                break
        dx, dy, ha = chosen
        x0 = px + dx * pt - (w if ha == "right" else 0)
        placed.append((x0, py + dy * pt, x0 + w, py + dy * pt + h))
        ax.annotate(labels[i], (xs[i], ys[i]), textcoords="offset points", xytext=(dx, dy), ha=ha, va="bottom", fontsize=fontsize)


def longform_figure(result: dict | pd.DataFrame | None, note: str = ""):
    """WER (%, y) against throughput in audio seconds per second (x), one point per row of
    longform.json, labelled with its number in the key beside the plot (the setting, its
    throughput and WER): whisper_ort's rows in one colour, faster-whisper's in another.
    Returns the Figure, or None when there are no rows."""
    from matplotlib.lines import Line2D

    table = result if isinstance(result, pd.DataFrame) else longform_table(result)
    table = table.dropna(subset=["audio_s_per_s", "wer"]).reset_index(drop=True)
    if table.empty:
        return None
    fig, ax = _figure(12, 5.4)
    for impl in sorted(table["implementation"].unique(), key=impl_sort_key):
        sub = table[table["implementation"] == impl]
        ax.scatter(sub["audio_s_per_s"], 100 * sub["wer"], s=40, color=IMPL_COLORS.get(impl, "#999999"), zorder=3, label=impl)
    x, y = table["audio_s_per_s"].to_numpy(dtype=float), 100 * table["wer"].to_numpy(dtype=float)
    ax.set_xlim(0, x.max() * 1.12)
    ax.set_ylim(0, max(5.0, y.max() * 1.12))
    ax.set_xlabel("throughput: audio seconds transcribed per second (higher is faster)")
    ax.set_ylabel("word error rate, normalized (%)")
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], ls="", marker="o", color=IMPL_COLORS.get(r.implementation, "#999999"),
                      label=f"{i + 1}  {r.setting}: {r.audio_s_per_s:.1f} s/s, {100 * r.wer:.1f} %") for i, r in enumerate(table.itertuples())]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5, frameon=False,
              title="setting: audio s per s, WER", title_fontsize=8, alignment="left")
    _finish(fig, "Long audio: accuracy against throughput, per setting", note)
    _place_labels(ax, list(x), list(y), [str(i + 1) for i in range(len(table))], fontsize=8)
    return fig


def plot_longform(result: dict | pd.DataFrame | None, plots_dir, name="longform_wer_throughput", note: str = "") -> dict | None:
    """longform_figure saved as <plots_dir>/<name>.png and .svg."""
    fig = longform_figure(result, note)
    return save(fig, plots_dir, name) if fig is not None else None


def serving_figure(data: dict | pd.DataFrame | None, note: str = ""):
    """Left: throughput (requests/s) against concurrent clients, one line per server; right:
    p50 (solid) and p95 (dashed) latency. Returns the Figure, or None without levels."""
    table = data if isinstance(data, pd.DataFrame) else serving_table(data)
    table = table.dropna(subset=["clients"])
    if table.empty:
        return None
    fig, (ax1, ax2) = _figure(12, 4.8, ncols=2)
    palette = ["#66a182", "#8c6bb1", "#8c8c8c", "#222222"]
    servers = list(dict.fromkeys(table["server"]))
    for i, server in enumerate(servers):
        sub = table[table["server"] == server].sort_values("clients")
        color = SERVER_COLORS.get(server, palette[i % len(palette)])
        ax1.plot(sub["clients"], sub["throughput_rps"], marker="o", color=color, lw=1.8, label=server)
        ax2.plot(sub["clients"], sub["p50_s"], marker="o", color=color, lw=1.8, label=f"{server}: p50")
        ax2.plot(sub["clients"], sub["p95_s"], marker="^", color=color, lw=1.2, ls="--", label=f"{server}: p95")
    clients = sorted(int(c) for c in table["clients"].unique())
    for ax in (ax1, ax2):
        if len(clients) > 1 and clients[-1] / max(clients[0], 1) >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(clients, [str(c) for c in clients])
        ax.minorticks_off()
        ax.set_xlabel("concurrent clients (closed loop)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    ax1.set_ylabel("throughput (requests / s)")
    ax1.set_title("Throughput", fontsize=10)
    ax2.set_ylabel("latency per request (s)")
    ax2.set_title("Latency: p50 solid, p95 dashed", fontsize=10)
    _legend_outside(ax2)
    _finish(fig, "Serving: throughput and latency against concurrent clients", note)
    return fig


def plot_serving(data: dict | pd.DataFrame | None, plots_dir, name="serving", note: str = "") -> dict | None:
    """serving_figure saved as <plots_dir>/<name>.png and .svg."""
    fig = serving_figure(data, note)
    return save(fig, plots_dir, name) if fig is not None else None

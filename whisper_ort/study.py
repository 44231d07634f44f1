"""The study: runs that make the records, and every notebook executed headlessly with papermill.

    python -m whisper_ort.study --params params/default.yaml      (what `make notebooks` runs)

executes notebooks/{latency_sweep, thread_scaling, stage_breakdown, peers, transcript_diff}.ipynb
in that order into results/notebooks/, each with the YAML's `common:` parameters (those the
notebook declares) and its own section, writes results/benchmarks/study.json (what ran, how
long), then regenerates RESULTS.md from the records (`whisper_ort.report`).

The notebooks call the run helpers below, which start every measured setting in a fresh
process (`whisper-ort bench`, `whisper-ort compare`), so a thread count or an
implementation never inherits another's warm caches or thread pools.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from .records import Record, write_records
from .report import NATIVE, StudyPaths, load_records, load_summary, repo_root, resolve

NOTEBOOKS = ("latency_sweep", "thread_scaling", "stage_breakdown", "peers", "transcript_diff")
KERNEL = "whisper-ort"


class RunError(RuntimeError):
    """A run in a subprocess failed; the message holds its command and the end of its output."""


# ---------------------------------------------------------------- subprocess runs


def cli() -> list[str]:
    """The `whisper-ort` command of this interpreter's environment."""
    script = Path(sys.executable).parent / "whisper-ort"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "whisper_ort.cli"]


def rel_path(path: str | Path) -> str:
    """A path relative to the repository root when it is inside it (commands read better)."""
    p = resolve(path)
    try:
        return str(p.relative_to(repo_root()))
    except ValueError:
        return str(p)


def run_command(args: list[str], timeout: float | None = None, echo: bool = True) -> subprocess.CompletedProcess:
    """Run a command from the repository root; print its command line and stdout; raise
    RunError with the end of its stderr when it exits with 2 or more (1 = some files failed)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    shown = " ".join(shlex.quote(a) for a in [Path(args[0]).name, *args[1:]])
    if echo:
        print(f"$ {shown}", flush=True)
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=timeout)
    if echo and proc.stdout.strip():
        print(proc.stdout.rstrip(), flush=True)
    if proc.returncode >= 2 or proc.returncode < 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RunError(f"`{shown}` exited with {proc.returncode} after {time.perf_counter() - started:.0f} s:\n{tail}")
    return proc


def bench(output_dir, audio_dir="audio", files=None, threads=2, repeats=1, warmup=1, max_new_tokens=128, variant="auto", onnx_dir="whisper-base-with-past", resume=False, timeout=None):
    """`whisper-ort bench` in a fresh process; returns (records DataFrame, summary)."""
    args = [*cli(), "bench", "--audio-dir", rel_path(audio_dir), "--onnx-dir", rel_path(onnx_dir), "--output-dir", rel_path(output_dir),
            "--threads", str(int(threads)), "--repeats", str(int(repeats)), "--warmup", str(int(warmup)),
            "--max-new-tokens", str(int(max_new_tokens)), "--variant", str(variant), "--no-progress"]
    if files:
        args += ["--files", str(files)]
    if resume:
        args.append("--resume")
    run_command(args, timeout=timeout)
    out = resolve(output_dir)
    return load_records(out / "inference_per_file.json"), load_summary(out / "inference_summary.json")


def compare_available() -> bool:
    return importlib.util.find_spec("whisper_ort.compare") is not None


def compare(output_dir, implementations, audio_dir="audio", files=None, threads=2, repeats=1, warmup=1, max_new_tokens=128, onnx_dir="whisper-base-with-past", extra: list[str] | None = None, timeout=None):
    """`whisper-ort compare` (each implementation in its own process, interleaved) into
    output_dir; returns (records DataFrame, summary)."""
    if not compare_available():
        raise RunError("whisper_ort.compare is not installed yet: peers cannot be run (only whisper_ort can)")
    from . import compare as compare_mod

    args = [*cli(), "compare", "--audio-dir", rel_path(audio_dir), "--onnx-dir", rel_path(onnx_dir), "--output-dir", rel_path(output_dir),
            "--threads", str(int(threads)), "--repeats", str(int(repeats)), "--warmup", str(int(warmup)),
            "--max-new-tokens", str(int(max_new_tokens))]
    args += _implementations_args(compare_mod, implementations)
    if files:
        args += ["--files", str(files)]
    if "--no-progress" in _flags(compare_mod.add_arguments):
        args.append("--no-progress")
    args += list(extra or [])
    run_command(args, timeout=timeout)
    out = resolve(output_dir)
    return load_records(out / "records.json"), load_summary(out / "summary.json")


def _flags(adder) -> set[str]:
    parser = argparse.ArgumentParser()
    adder(parser)
    return {s for a in parser._actions for s in a.option_strings}


def _implementations_args(compare_mod, implementations) -> list[str]:
    """The implementations flag the compare command takes (introspected: it is another module's)."""
    parser = argparse.ArgumentParser()
    compare_mod.add_arguments(parser)
    flags = {s for a in parser._actions for s in a.option_strings}
    flag = next((f for f in ("--implementations", "--peers", "--impl") if f in flags), None)
    if flag is None:
        raise RunError("whisper-ort compare has no --implementations flag")
    action = next(a for a in parser._actions if flag in a.option_strings)
    names = list(implementations)
    return [flag, *names] if action.nargs in ("+", "*") else [flag, ",".join(names)]


def reference(out="results/reference/inference_per_file.json", audio_dir="audio", files=None, threads=2, max_new_tokens=128, onnx_dir="whisper-base-with-past", timeout=None):
    """The hf_generate transcripts (the reference) into `out`: `whisper-ort reference` when
    the compare module offers it, else `whisper-ort compare --reference-only`."""
    if not compare_available():
        raise RunError("whisper_ort.compare is not installed yet: no reference transcripts can be made")
    from . import compare as compare_mod

    parser = argparse.ArgumentParser()
    if hasattr(compare_mod, "add_reference_arguments"):
        compare_mod.add_reference_arguments(parser)
        args = [*cli(), "reference"]
    else:
        compare_mod.add_arguments(parser)
        args = [*cli(), "compare", "--reference-only"]
    flags = {s for a in parser._actions for s in a.option_strings}
    wanted = {"--audio-dir": rel_path(audio_dir), "--onnx-dir": rel_path(onnx_dir), "--threads": str(int(threads)), "--max-new-tokens": str(int(max_new_tokens)),
              "--files": files, "--reference-out": rel_path(out), "--no-progress": True}
    for flag, value in wanted.items():
        if value is None or flag not in flags:
            continue
        args += [flag] if value is True else [flag, str(value)]
    run_command(args, timeout=timeout)
    return load_records(resolve(out))


def run_latency(implementations=(NATIVE,), bench_dir="results/benchmarks", audio_dir="audio", files=None, threads=2, repeats=3, warmup=1, max_new_tokens=128, variant="auto", onnx_dir="whisper-base-with-past"):
    """The latency sweep: whisper_ort through `whisper-ort bench` into
    <bench_dir>/latency/whisper_ort/, any other implementation through `whisper-ort
    compare` into <bench_dir>/latency/<implementation>/. Returns all records, one DataFrame."""
    import pandas as pd

    paths = StudyPaths.of(bench_dir)
    frames = []
    for impl in implementations:
        if impl == NATIVE:
            df, _ = bench(paths.latency_dir(NATIVE), audio_dir=audio_dir, files=files, threads=threads, repeats=repeats, warmup=warmup, max_new_tokens=max_new_tokens, variant=variant, onnx_dir=onnx_dir)
        else:
            out = paths.latency_dir(impl)
            df, _ = compare(out, [impl], audio_dir=audio_dir, files=files, threads=threads, repeats=repeats, warmup=warmup, max_new_tokens=max_new_tokens, onnx_dir=onnx_dir)
            if df is not None:
                df = df[df["implementation"] == impl]
                # the latency folder gets its own files, as bench writes them
                write_records(out, [Record.from_dict(r) for r in df.to_dict("records")])
        if df is not None:
            frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else None


def run_thread_scaling(threads_list=(1, 2), bench_dir="results/benchmarks", audio_dir="audio", files=None, repeats=3, warmup=1, max_new_tokens=128, variant="auto", onnx_dir="whisper-base-with-past", interleave=True):
    """One fresh `whisper-ort bench --threads N` process per thread count into
    <bench_dir>/threads/<N>/. With interleave=True the repeats go round by round
    (1, 2, 4, 1, 2, 4, ...: one process per setting and round, `--resume` keeping the
    earlier rounds), so a burst of load from others on this shared machine hits every
    setting alike. The thread folders of an earlier run are removed first. Returns all
    records, one DataFrame."""
    import shutil

    import pandas as pd

    paths = StudyPaths.of(bench_dir)
    threads_list = [int(t) for t in threads_list]
    if paths.threads_dir.is_dir():  # a fresh start: no thread count or file of an earlier run mixed in
        for old in paths.threads_dir.iterdir():
            if old.is_dir() and old.name.isdigit():
                shutil.rmtree(old)
    rounds = range(1, int(repeats) + 1) if interleave else [int(repeats)]
    for r in rounds:
        for t in threads_list:
            bench(paths.threads_dir / str(t), audio_dir=audio_dir, files=files, threads=t, repeats=r, warmup=warmup, max_new_tokens=max_new_tokens, variant=variant, onnx_dir=onnx_dir, resume=interleave and r > 1)
    frames = []
    for t in threads_list:
        df = load_records(paths.threads_dir / str(t) / "inference_per_file.json")
        if df is not None:
            df["threads"] = t
            frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else None


# ---------------------------------------------------------------- notebooks


def load_params(path: str | Path) -> dict:
    import yaml

    data = yaml.safe_load(Path(resolve(path)).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with common: and one section per notebook")
    return data


def notebook_parameters(notebook: str | Path, params: dict) -> dict:
    """The parameters for one notebook: the `common:` ones it declares, then its section."""
    import papermill

    name = Path(notebook).stem
    declared = set(papermill.inspect_notebook(str(notebook)).keys())
    out = {k: v for k, v in (params.get("common") or {}).items() if k in declared}
    own = params.get(name) or {}
    unknown = sorted(set(own) - declared)
    if unknown:
        raise ValueError(f"{name}: unknown parameter(s) {', '.join(unknown)}; the notebook declares {', '.join(sorted(declared))}")
    out.update(own)
    return out


def kernel_name() -> str:
    """The notebooks' kernel (`whisper-ort`), or this environment's python3 when it is not registered."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if KERNEL in specs:
        return KERNEL
    print(f"kernel {KERNEL!r} is not registered (make install registers it); using python3", file=sys.stderr)
    return "python3"


def execute(notebook: str | Path, output: str | Path, parameters: dict, kernel: str | None = None, timeout: float | None = None):
    """One notebook through papermill (working directory: the repository root)."""
    import papermill

    return papermill.execute_notebook(
        str(resolve(notebook)), str(resolve(output)), parameters=parameters, kernel_name=kernel or kernel_name(),
        cwd=str(repo_root()), progress_bar=False, log_output=False, execution_timeout=timeout,
    )


def run_study(params_path="params/default.yaml", notebooks=NOTEBOOKS, output_dir=None, report=True, keep_going=False) -> int:
    """Run the notebooks in order, write study.json, regenerate RESULTS.md; returns an exit code."""
    from . import report as report_mod
    from .bench import environment
    from .records import write_json

    params = load_params(params_path)
    study = params.get("study") or {}
    common = params.get("common") or {}
    paths = StudyPaths.of(common.get("bench_dir", "results/benchmarks"), common.get("plots_dir", "results/plots"), common.get("reference", "results/reference/inference_per_file.json"))
    out_dir = resolve(output_dir or study.get("notebooks_dir", "results/notebooks"))
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel = kernel_name()
    ran, status = [], 0
    for name in notebooks:
        src = repo_root() / "notebooks" / f"{name}.ipynb"
        params_nb = notebook_parameters(src, params)
        print(f"[study] {name}: {params_nb}", flush=True)
        started = time.perf_counter()
        entry = {"notebook": f"notebooks/{name}.ipynb", "output": rel_path(out_dir / f"{name}.ipynb"), "parameters": params_nb, "loadavg_before": os.getloadavg()[0]}
        try:
            execute(src, out_dir / f"{name}.ipynb", params_nb, kernel=kernel)
            entry["status"] = "ok"
        except Exception as exc:  # papermill raises PapermillExecutionError with the cell's traceback
            entry["status"] = "failed"
            entry["error"] = " ".join(str(exc).split())[:500]
            print(f"[study] {name} failed: {entry['error']}", file=sys.stderr, flush=True)
            status = 1
        entry["elapsed_s"] = time.perf_counter() - started
        entry["loadavg_after"] = os.getloadavg()[0]  # 1-minute load average: others' work on a shared machine
        print(f"[study] {name}: {entry['status']} in {entry['elapsed_s']:.0f} s", flush=True)
        ran.append(entry)
        if status and not keep_going:
            break
    levers = params.get("levers")
    if levers and not status:
        # Each performance lever in fresh processes (python -m whisper_ort.levers): a table in RESULTS.md.
        from .levers import run_levers

        print(f"[study] levers: {levers}", flush=True)
        run_levers(audio_dir=common.get("audio_dir", "audio"), onnx_dir=common.get("onnx_dir", "whisper-base-with-past"),
                   output_dir=str(paths.bench_dir / "levers"),
                   threads=common.get("threads", 2), log=lambda m: print(f"[study] {m}", flush=True), **levers)
    env = environment()
    write_json(paths.study_json, {"params": rel_path(params_path), "kernel": kernel, "date_utc": env["date_utc"], "notebooks": ran, "environment": env})
    if report:
        output = study.get("results_md", "RESULTS.md")
        report_mod.build_results_md(paths=paths, output=output, audio_dir=common.get("audio_dir", "audio"))
        print(f"[study] wrote {output}", flush=True)
    return status


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m whisper_ort.study", description="run every notebook with papermill, then regenerate RESULTS.md")
    p.add_argument("--params", default="params/default.yaml", help="YAML: study:, common: and one section per notebook (default: %(default)s)")
    p.add_argument("--notebooks", nargs="+", default=list(NOTEBOOKS), choices=NOTEBOOKS, metavar="NAME", help=f"a subset, in this order: {' '.join(NOTEBOOKS)}")
    p.add_argument("--output-dir", default=None, help="executed notebooks (default: the YAML's study.notebooks_dir, else results/notebooks)")
    p.add_argument("--no-report", action="store_true", help="do not regenerate RESULTS.md")
    p.add_argument("--keep-going", action="store_true", help="run the other notebooks after one fails")
    args = p.parse_args(argv)
    order = [n for n in NOTEBOOKS if n in args.notebooks]
    return run_study(args.params, order, args.output_dir, report=not args.no_report, keep_going=args.keep_going)


if __name__ == "__main__":
    sys.exit(main())

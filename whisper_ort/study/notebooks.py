"""The study: runs that make the records, and every notebook executed headlessly with papermill.

    python -m whisper_ort.study --params params/default.yaml      (what `make notebooks` runs)

executes notebooks/{latency_sweep, thread_scaling, stage_breakdown, peers, longform, serving,
transcript_diff}.ipynb in that order into results/notebooks/, each with the YAML's `common:`
parameters (those the notebook declares) and its own section, writes
results/benchmarks/study.json (what ran, how long), then regenerates RESULTS.md from the
records (`whisper_ort.study.results_md`).

The notebooks call the run helpers below, which start every measured setting in a fresh
process (`whisper-ort bench`, `whisper-ort compare`, `python -m whisper_ort.measure.longbench`,
`python -m whisper_ort.measure.serving`), so a thread count or an
implementation never inherits another's warm caches or thread pools.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from whisper_ort.study.paths import BENCH_DIR, NOTEBOOKS_DIR, PLOTS_DIR, REFERENCE, StudyPaths, repo_root, resolve
from whisper_ort.study.runs import rel_path

NOTEBOOKS = ("latency_sweep", "thread_scaling", "stage_breakdown", "peers", "longform", "serving", "transcript_diff")
KERNEL = "whisper-ort"




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
    from whisper_ort.measure.environment import environment
    from whisper_ort.measure.records import write_json
    from whisper_ort.study import results_md

    params = load_params(params_path)
    study = params.get("study") or {}
    common = params.get("common") or {}
    paths = StudyPaths.of(common.get("bench_dir", BENCH_DIR), common.get("plots_dir", PLOTS_DIR), common.get("reference", REFERENCE))
    out_dir = resolve(output_dir or study.get("notebooks_dir", NOTEBOOKS_DIR))
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
        # Each performance lever in fresh processes (python -m whisper_ort.measure.levers): a table in RESULTS.md.
        from whisper_ort.measure.levers import run_levers

        print(f"[study] levers: {levers}", flush=True)
        run_levers(audio_dir=common.get("audio_dir", "audio"), onnx_dir=common.get("onnx_dir", "whisper-base-with-past"),
                   output_dir=str(paths.levers_dir),
                   threads=common.get("threads", 2), log=lambda m: print(f"[study] {m}", flush=True), **levers)
    env = environment()
    write_json(paths.study_json, {"params": rel_path(params_path), "kernel": kernel, "date_utc": env["date_utc"], "notebooks": ran, "environment": env})
    if report:
        output = study.get("results_md", "RESULTS.md")
        results_md.build_results_md(paths=paths, output=output, audio_dir=common.get("audio_dir", "audio"))
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

"""Runs that make the study's records, each measured setting in a fresh process
(`whisper-ort bench`, `whisper-ort compare`, `whisper-ort reference`, `python -m
whisper_ort.measure.longbench` and `.serving`), so a thread count or an
implementation never inherits another's warm caches or thread pools."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from whisper_ort.measure.records import Record, write_records
from whisper_ort.study.load import load_records, load_summary
from whisper_ort.study.paths import BENCH_DIR, NATIVE, REFERENCE, StudyPaths, repo_root, resolve


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
    return importlib.util.find_spec("whisper_ort.measure.compare") is not None


def compare(output_dir, implementations, audio_dir="audio", files=None, threads=2, repeats=1, warmup=1, max_new_tokens=128, onnx_dir="whisper-base-with-past", extra: list[str] | None = None, timeout=None):
    """`whisper-ort compare` (each implementation in its own process, interleaved) into
    output_dir; returns (records DataFrame, summary)."""
    if not compare_available():
        raise RunError("whisper_ort.measure.compare is not installed yet: peers cannot be run (only whisper_ort can)")
    from whisper_ort.measure import compare as compare_mod

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


def reference(out=REFERENCE, audio_dir="audio", files=None, threads=2, max_new_tokens=128, onnx_dir="whisper-base-with-past", timeout=None):
    """The hf_generate transcripts (the reference) into `out`: `whisper-ort reference` when
    the compare module offers it, else `whisper-ort compare --reference-only`."""
    if not compare_available():
        raise RunError("whisper_ort.measure.compare is not installed yet: no reference transcripts can be made")
    from whisper_ort.measure import compare as compare_mod

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


def run_latency(implementations=(NATIVE,), bench_dir=BENCH_DIR, audio_dir="audio", files=None, threads=2, repeats=3, warmup=1, max_new_tokens=128, variant="auto", onnx_dir="whisper-base-with-past"):
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


def run_thread_scaling(threads_list=(1, 2), bench_dir=BENCH_DIR, audio_dir="audio", files=None, repeats=3, warmup=1, max_new_tokens=128, variant="auto", onnx_dir="whisper-base-with-past", interleave=True):
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


def _module_run(module: str, args: list[str], timeout=None) -> subprocess.CompletedProcess:
    """`python -m <module> args` from the repository root; RunError unless it exits with 0
    (these commands have no "some files failed" exit code: 1 is a traceback)."""
    proc = run_command([sys.executable, "-m", module, *args], timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RunError(f"`python -m {module}` exited with {proc.returncode}:\n{tail}")
    return proc


def longbench(output_dir, audio_dir="audio", threads=2, minutes=5.0, extra: list[str] | None = None, timeout=None) -> dict | None:
    """`python -m whisper_ort.measure.longbench` in a fresh process (it starts one more per
    setting) into output_dir; returns longform.json's contents."""
    from whisper_ort.study.load import _read_json

    args = ["--audio-dir", rel_path(audio_dir), "--threads", str(int(threads)), "--minutes", f"{float(minutes):g}",
            "--output-dir", rel_path(output_dir), *[str(a) for a in (extra or [])]]
    _module_run("whisper_ort.measure.longbench", args, timeout=timeout)
    data = _read_json(resolve(output_dir) / "longform.json")
    return data if isinstance(data, dict) else None


def serving(output_dir, audio_dir="audio", threads=2, clients="1,2,4,8,16", duration=30.0, servers=None, onnx_dir=None, extra: list[str] | None = None, timeout=None) -> dict | None:
    """`python -m whisper_ort.measure.serving` (it starts and stops every server itself) into
    output_dir; returns serving.json's contents."""
    from whisper_ort.study.load import _read_json

    if not isinstance(clients, str):
        clients = ",".join(str(int(c)) for c in clients)
    args = ["--audio-dir", rel_path(audio_dir), "--threads", str(int(threads)), "--clients", clients, "--duration", f"{float(duration):g}",
            "--output-dir", rel_path(output_dir)]
    if servers:
        args += ["--servers", servers if isinstance(servers, str) else ",".join(servers)]
    if onnx_dir:
        args += ["--onnx-dir", rel_path(onnx_dir)]
    args += [str(a) for a in (extra or [])]
    _module_run("whisper_ort.measure.serving", args, timeout=timeout)
    data = _read_json(resolve(output_dir) / "serving.json")
    return data if isinstance(data, dict) else None

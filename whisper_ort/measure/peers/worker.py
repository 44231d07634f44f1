"""One implementation in its own process, driven line by line over stdin/stdout.

    python -m whisper_ort.measure.peers.worker --implementation NAME --onnx-dir DIR --threads N

Applies the CPU / memory limits it is given, loads the implementation once, then prints
one JSON object per line on stdout:

    {"event": "ready", "load_s": ..., "info": {...}, "limits": {...}, "pid": ..., ...}
    {"event": "error", "error": "..."}                    (load failed; exit status 2)

and answers commands read from stdin, one per line:

    run <file> <repeat>   -> {"event": "record", "record": {...}, "rss_mb": ..., "hwm_mb": ...}
    quit                  -> {"event": "bye", "hwm_mb": ...}, exit 0

stdout carries nothing else: file descriptor 1 is pointed at stderr before any library
loads, so C++ and Python chatter goes to stderr (compare writes it to a log file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback


def _protocol_stream():
    """A private copy of stdout for the protocol; fd 1 and sys.stdout then go to stderr."""
    sys.stdout.flush()
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", buffering=1, encoding="utf-8")


def proc_status_mb(pid: int | str = "self") -> dict:
    """VmRSS / VmHWM (peak RSS) of a process from /proc, in MB (10^6 bytes)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024 / 1e6
    except OSError:
        pass
    return {"rss_mb": out.get("VmRSS"), "hwm_mb": out.get("VmHWM")}


def _seconds_since_process_start() -> float | None:
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m whisper_ort.measure.peers.worker", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--implementation", required=True)
    p.add_argument("--onnx-dir", default="whisper-base-with-past")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--language", default="en")
    p.add_argument("--task", default="transcribe")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--beam-size", type=int, default=1, help="beams (1: greedy); only implementations with a beam search take more")
    p.add_argument("--cpus", default=None, help="CPU list to pin to, e.g. 0,1 or 0-3")
    p.add_argument("--memory-bytes", type=int, default=None, help="memory cap (cgroup v2 via --cgroup, else RLIMIT_AS)")
    p.add_argument("--cgroup", default=None, help="cgroup v2 leaf to join (made by the parent)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    proto = _protocol_stream()

    def send(obj: dict) -> None:
        proto.write(json.dumps(obj, ensure_ascii=True, default=str) + "\n")
        proto.flush()

    args = parse_args(argv)
    from .limits import apply_in_worker, parse_cpus

    try:
        limits = apply_in_worker(parse_cpus(args.cpus), args.memory_bytes, args.cgroup)
    except OSError as exc:
        send({"event": "error", "error": f"cannot apply limits: {exc}"})
        return 2

    from whisper_ort.measure.records import failed_record

    from . import create
    from ._common import offline_env, one_line

    offline_env()
    started = _seconds_since_process_start()
    t0 = time.perf_counter()
    try:
        impl = create(args.implementation, args.onnx_dir, threads=args.threads, language=args.language, task=args.task, max_new_tokens=args.max_new_tokens,
                      beam_size=args.beam_size, own_process=True)
    except BaseException as exc:  # noqa: B036 - report any load failure, then exit
        traceback.print_exc()
        send({"event": "error", "error": f"{args.implementation}: load failed: {one_line(exc)}"})
        return 2
    load_s = getattr(impl, "load_s", None) or (time.perf_counter() - t0)
    try:
        info = impl.info() if hasattr(impl, "info") else {}
    except Exception as exc:
        info = {"info_error": one_line(exc)}
    send(
        {
            "event": "ready",
            "implementation": args.implementation,
            "pid": os.getpid(),
            "load_s": load_s,
            "startup_before_load_s": started,
            "info": info,
            "limits": limits,
            **proc_status_mb(),
        }
    )

    for line in sys.stdin:
        command = line.strip()
        if not command:
            continue
        if command == "quit":
            send({"event": "bye", **proc_status_mb()})
            return 0
        if command.startswith("run "):
            try:
                path, repeat = command[4:].rsplit(" ", 1)
                repeat = int(repeat)
            except ValueError:
                send({"event": "error", "error": f"bad command: {command!r} (want: run <file> <repeat>)"})
                continue
            try:
                record = impl.transcribe_record(path, repeat=repeat)
            except Exception as exc:  # implementations should not raise; keep the worker alive if one does
                traceback.print_exc()
                record = failed_record(os.path.basename(path), args.implementation, f"{os.path.basename(path)}: {one_line(exc)}", threads=args.threads, repeat=repeat)
            send({"event": "record", "record": record.to_dict(), **proc_status_mb()})
            continue
        send({"event": "error", "error": f"unknown command: {command!r}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())

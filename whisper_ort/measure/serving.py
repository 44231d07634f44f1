"""The serving benchmark: throughput and latency under 1..16 concurrent clients, on loopback.

    python -m whisper_ort.measure.serving --duration 20 --clients 1,2,4,8,16

Each server runs in its own process on 127.0.0.1, started and stopped here: `batched`
(whisper-ort serve), `one_at_a_time` (whisper-ort serve --no-batching: the same server, one
window per batch) and `faster_whisper` (measure/peers/fw_server.py: speaches' thread-pool
design). All are up at once but only one is under load at a time: for each number of
clients, each server in turn gets that many closed-loop clients (httpx, asyncio) posting
the short files in turn for `duration` seconds, who then finish the request they have in
flight. Every request and its latency is kept: serving.json (all of them) and serving.md
(the table) in --output-dir. Importing this module loads nothing heavy: httpx is imported to run.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from whisper_ort.measure.environment import cpu_model
from whisper_ort.measure.records import write_atomic, write_json
from whisper_ort.study.paths import BENCH_DIR

SERVERS = ("batched", "one_at_a_time", "faster_whisper")
SHORT_S = 20.0  # "short files": the samples up to this long


def short_files(audio_dir: Path, max_s: float = SHORT_S) -> list[tuple[Path, float]]:
    """(path, seconds) of the MANIFEST.csv files up to max_s long."""
    with open(audio_dir / "MANIFEST.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [(audio_dir / r["file"], float(r["duration_s"])) for r in rows if float(r["duration_s"]) <= max_s and (audio_dir / r["file"]).is_file()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(name: str, port: int, threads: int, onnx_dir: str | None, max_batch: int) -> list[str]:
    model = ["--onnx-dir", onnx_dir] if onnx_dir else []
    if name == "faster_whisper":
        return [sys.executable, "-m", "whisper_ort.measure.peers.fw_server", "--port", str(port), "--threads", str(threads), *model]
    batching = ["--no-batching"] if name == "one_at_a_time" else ["--max-batch", str(max_batch)]
    return [sys.executable, "-m", "whisper_ort.cli", "serve", "--port", str(port), "--threads", str(threads), "--log-level", "warning", *batching, *model]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 180.0) -> None:
    import httpx

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"server not ready after {timeout_s:.0f} s")


async def _load(url: str, files: list[tuple[str, bytes, float]], clients: int, duration_s: float, timeout_s: float) -> tuple[list[dict], float]:
    """`clients` closed-loop clients for duration_s; each request's start, latency, status, audio seconds."""
    import asyncio

    import httpx

    records: list[dict] = []
    start = time.perf_counter()
    stop_at = start + duration_s
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as http:

        async def client(k: int) -> None:
            i = k  # each client starts at another file
            while time.perf_counter() < stop_at:
                name, data, seconds = files[i % len(files)]
                i += 1
                t0 = time.perf_counter()
                try:
                    r = await http.post("/v1/audio/transcriptions", files={"file": (name, data)}, data={"model": "whisper-1", "language": "en"})
                    status, text = r.status_code, (r.json().get("text", "") if r.status_code == 200 else r.text[:200])
                except httpx.HTTPError as exc:
                    status, text = -1, f"{type(exc).__name__}: {exc}"
                records.append({"client": k, "file": name, "audio_s": seconds, "t_start": t0 - start,
                                "latency_s": time.perf_counter() - t0, "status": status, "text": text})

        await asyncio.gather(*(client(k) for k in range(clients)))
    return records, time.perf_counter() - start


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def summarize(records: list[dict], elapsed_s: float, texts: dict | None = None) -> dict:
    """Counts, throughput, latency; `changed`: answers whose text is not the file's warm-up text."""
    ok = [r for r in records if r["status"] == 200]
    lat = [r["latency_s"] for r in ok]
    changed = sum(1 for r in ok if texts is not None and r["text"] != texts.get(r["file"]))
    return {"requests": len(records), "ok": len(ok), "failed": len(records) - len(ok), "changed": changed, "elapsed_s": round(elapsed_s, 3),
            "throughput_rps": round(len(ok) / elapsed_s, 3) if elapsed_s else 0.0,
            "audio_s_per_s": round(sum(r["audio_s"] for r in ok) / elapsed_s, 2) if elapsed_s else 0.0,
            "p50_s": round(_percentile(lat, 50), 3), "p95_s": round(_percentile(lat, 95), 3)}


def run_servers(names: list[str], files, clients: list[int], duration_s: float, threads: int, onnx_dir, max_batch: int, log) -> list[dict]:
    """Every server up at once (idle ones cost nothing), then each client count against each
    server in turn: slow drifts of the machine fall on all of them alike."""
    import asyncio

    import httpx

    procs, urls, texts = {}, {}, {}
    results = {name: {"server": name, "levels": []} for name in names}
    try:
        for name in names:
            port = _free_port()
            urls[name] = f"http://127.0.0.1:{port}"
            procs[name] = subprocess.Popen(server_command(name, port, threads, onnx_dir, max_batch), stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            _wait_healthy(urls[name], procs[name])  # one at a time: loading is CPU work too
            texts[name] = {}
            for fname, data, _ in files:  # warm-up: every file once, its text the one every later answer must give
                r = httpx.post(f"{urls[name]}/v1/audio/transcriptions", files={"file": (fname, data)}, data={"model": "whisper-1", "language": "en"}, timeout=300)
                texts[name][fname] = r.json().get("text") if r.status_code == 200 else None
        for c in clients:
            for name in names:
                cpu0 = _cpu_s(procs[name].pid)
                records, elapsed = asyncio.run(_load(urls[name], files, c, duration_s, timeout_s=300))
                ok = sum(1 for r in records if r["status"] == 200)
                # CPU seconds the server spent per answer: robust to other work on the machine, which
                # the 1-minute load average after the level shows (above the cores in use: someone else ran).
                cpu = {"cpu_s_per_request": round((_cpu_s(procs[name].pid) - cpu0) / ok, 3) if ok else None, "loadavg_1m": round(os.getloadavg()[0], 2)}
                level = {"clients": c, **summarize(records, elapsed, texts[name]), **cpu, "records": records}
                results[name]["levels"].append(level)
                log(f"{name:>15} clients={c:>2}  {level['throughput_rps']:6.2f} req/s  p50 {level['p50_s']:6.2f} s  p95 {level['p95_s']:6.2f} s  "
                    f"ok {level['ok']}/{level['requests']}  CPU {level['cpu_s_per_request']} s/req  load {level['loadavg_1m']}")
        for name in names:
            if name != "faster_whisper":
                results[name]["health"] = httpx.get(f"{urls[name]}/health", timeout=5).json()
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
    return [results[name] for name in names]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its threads so far."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def table(results: list[dict]) -> str:
    """Markdown: one row per server and client count, with the ratio to one_at_a_time and faster_whisper."""
    by = {(r["server"], lv["clients"]): lv for r in results for lv in r["levels"]}
    lines = ["| server | clients | req/s | audio s/s | p50 s | p95 s | CPU s/req | failed | text changed | load 1m | x one-at-a-time | x faster-whisper |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for lv in r["levels"]:
            ratios = []
            for ref in ("one_at_a_time", "faster_whisper"):
                other = by.get((ref, lv["clients"]))
                ratios.append(f"{lv['throughput_rps'] / other['throughput_rps']:.2f}" if other and other["throughput_rps"] else "")
            lines.append(f"| {r['server']} | {lv['clients']} | {lv['throughput_rps']:.2f} | {lv['audio_s_per_s']:.1f} | {lv['p50_s']:.2f} | "
                         f"{lv['p95_s']:.2f} | {lv.get('cpu_s_per_request')} | {lv['failed']} | {lv['changed']} | {lv.get('loadavg_1m', '')} | {ratios[0]} | {ratios[1]} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio-dir", default="audio")
    p.add_argument("--clients", default="1,2,4,8,16", help="comma-separated client counts (default: %(default)s)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load per client count (default: %(default)s)")
    p.add_argument("--servers", default=",".join(SERVERS), help="which of %(default)s")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--onnx-dir", default=None)
    p.add_argument("--output-dir", default=f"{BENCH_DIR}/serving")
    args = p.parse_args(argv)
    # SIGTERM (a timeout, a CI kill) unwinds like ^C, so the servers started here are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    files = [(f.name, f.read_bytes(), seconds) for f, seconds in short_files(Path(args.audio_dir))]
    if not files:
        print(f"no files of at most {SHORT_S:g} s in {args.audio_dir}", file=sys.stderr)
        return 2
    clients = [int(c) for c in args.clients.split(",")]
    names = args.servers.split(",")
    if set(names) - set(SERVERS):
        p.error(f"unknown server(s) {sorted(set(names) - set(SERVERS))}; use {', '.join(SERVERS)}")
    results = run_servers(names, files, clients, args.duration, args.threads, args.onnx_dir, args.max_batch, log=lambda m: print(m, flush=True))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"command": " ".join(["python -m whisper_ort.measure.serving", *(argv if argv is not None else sys.argv[1:])]), "duration_s": args.duration,
            "threads": args.threads, "max_batch": args.max_batch, "files": [f[0] for f in files], "cpu": cpu_model(), "cores": os.cpu_count()}
    write_json(out / "serving.json", {"meta": meta, "results": results})  # atomic, as every record file
    md = table(results)
    write_atomic(out / "serving.md", f"`{meta['command']}` on {meta['cpu']} ({meta['cores']} cores), {len(files)} files of at most {SHORT_S:g} s\n\n{md}")
    print(md)
    print(f"wrote {out / 'serving.json'} and serving.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

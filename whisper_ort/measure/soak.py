"""A bounded soak of the batched server at saturation: `python -m whisper_ort.measure.soak --minutes 10`.

Starts `whisper-ort serve` (batched) in its own process on loopback, sends every short file
once (its text: what each later answer must give), then runs `--clients` closed-loop clients
for `--minutes`, in slices of `--slice-s`. After each slice it reads the server's RSS
(psutil). Reports failed requests (any status but 200, or no answer), answers whose text
changed, and the RSS growth after warm-up: the last slice's RSS against the first slice's
(the first slice is the warm-up: arenas and caches reach their size there). Writes soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from whisper_ort.measure.environment import cpu_model
from whisper_ort.measure.records import write_json
from whisper_ort.measure.serving import _free_port, _load, _wait_healthy, server_command, short_files, summarize
from whisper_ort.study.paths import BENCH_DIR


def main(argv=None) -> int:
    import httpx
    import psutil

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio-dir", default="audio")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--slice-s", type=float, default=60.0, help="seconds of load between RSS readings")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--onnx-dir", default=None)
    p.add_argument("--output-dir", default=f"{BENCH_DIR}/serving")
    a = p.parse_args(argv)
    files = [(path.name, path.read_bytes(), seconds) for path, seconds in short_files(Path(a.audio_dir))]
    if not files:
        print(f"no short files in {a.audio_dir}", file=sys.stderr)
        return 2
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(server_command("batched", port, a.threads, a.onnx_dir, a.max_batch), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    slices = []
    try:
        _wait_healthy(url, proc)
        texts = {}
        for name, data, _ in files:
            r = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": (name, data)}, data={"model": "whisper-1", "language": "en"}, timeout=300)
            texts[name] = r.json().get("text") if r.status_code == 200 else None
        server = psutil.Process(proc.pid)
        end = time.monotonic() + a.minutes * 60
        while time.monotonic() < end:
            records, elapsed = asyncio.run(_load(url, files, a.clients, min(a.slice_s, end - time.monotonic()), timeout_s=300))
            s = summarize(records, elapsed, texts)
            s["rss_mb"] = round(server.memory_info().rss / 2**20, 1)
            slices.append(s)
            print(f"slice {len(slices)}: {s['ok']}/{s['requests']} ok, {s['changed']} changed, {s['throughput_rps']} req/s, "
                  f"p95 {s['p95_s']} s, RSS {s['rss_mb']} MB", flush=True)
        health = httpx.get(f"{url}/health", timeout=5).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
    first, last = slices[0]["rss_mb"], slices[-1]["rss_mb"]
    result = {"command": " ".join(["python -m whisper_ort.measure.soak", *(argv if argv is not None else sys.argv[1:])]), "cpu": cpu_model(),
              "cores": os.cpu_count(), "clients": a.clients, "minutes": a.minutes, "requests": sum(s["requests"] for s in slices),
              "failed": sum(s["failed"] for s in slices), "changed": sum(s["changed"] for s in slices),
              "rss_after_warmup_mb": first, "rss_end_mb": last, "rss_max_mb": max(s["rss_mb"] for s in slices),
              "rss_growth_pct": round(100 * (last - first) / first, 2), "server_exit_code": proc.returncode, "health": health, "slices": slices}
    out = Path(a.output_dir)
    write_json(out / "soak.json", result)
    print(f"{result['requests']} requests, {result['failed']} failed, {result['changed']} changed; RSS {first} -> {last} MB "
          f"({result['rss_growth_pct']:+.2f} % after warm-up); server exit {proc.returncode}; wrote {out / 'soak.json'}")
    return 0 if result["failed"] == 0 and result["changed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

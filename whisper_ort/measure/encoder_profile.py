"""Where the encoder's time goes: ONNX Runtime's own node profile, per kind of node.

The encoder session runs as the pipeline builds it (same options, threads), with ORT's
profiler on, over one window of a real file. Nodes are grouped by kind (the layer index
taken out of the name: `/layers.L/fc1/MatMul` is one kind, six nodes), each with its
median milliseconds per run, its FLOPs (MatMul and Conv read off the graph, the attention
scores and values from the model dims) and so its GFLOP/s against this machine's measured
GEMM peak (results/benchmarks/hardware.json, when `python -m whisper_ort.measure.hardware`
has written it).

    python -m whisper_ort.measure.encoder_profile --audio-dir samples --file jfk.flac --runs 5
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

LAYER = re.compile(r"layers\.\d+")
ENCODER = "encoder_model.onnx"


def _kind(node: str) -> str:
    return LAYER.sub("layers.L", node)


def profile(model_dir: Path, mel, threads: int = 2, runs: int = 5) -> dict:
    """{"runs", "threads", "total_ms", "kinds": [{kind, op, nodes, ms, share, gflop, gflops}]}:
    one warm-up run, then `runs` profiled ones; ms is the median over the runs of the
    kind's summed kernel time."""
    import onnxruntime as ort

    from whisper_ort.core.session import SessionConfig
    from whisper_ort.measure.hardware import WHISPER_BASE, encoder_flops, onnx_node_flops

    path = Path(model_dir) / ENCODER
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such encoder (make model)")
    with tempfile.TemporaryDirectory() as tmp:
        opts = SessionConfig(threads=threads).options("encoder")
        opts.enable_profiling, opts.profile_file_prefix = True, str(Path(tmp) / "encoder")
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feeds = {session.get_inputs()[0].name: mel}
        for _ in range(1 + runs):  # the first is the warm-up: its allocations stay out
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    events = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    per_run, rest = divmod(len(events), 1 + runs)
    if rest or not per_run:
        raise RuntimeError(f"{path}: {len(events)} node events do not split into {1 + runs} runs")
    times: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0] * runs)
    nodes: dict[tuple[str, str], set] = defaultdict(set)
    for i, e in enumerate(events[per_run:]):
        name, op = e["name"][: -len("_kernel_time")], e["args"]["op_name"]
        times[(_kind(name), op)][i // per_run] += e["dur"] / 1000
        nodes[(_kind(name), op)].add(name)
    flops = {name: f for name, (_, f) in onnx_node_flops(path, {k: list(v.shape) for k, v in feeds.items()}).items()}
    dims = encoder_flops()
    per_attention = (dims["attn_scores"] + dims["attn_values"]) / WHISPER_BASE["encoder_layers"]  # one layer's QK^T and AV
    rows = []
    for (kind, op), t in times.items():
        names = nodes[(kind, op)]
        gflop = (per_attention * len(names) if op == "MultiHeadAttention" else sum(flops.get(n, 0) for n in names)) / 1e9
        ms = statistics.median(t)
        rows.append({"kind": kind, "op": op, "nodes": len(names), "ms": ms, "gflop": gflop, "gflops": gflop / ms * 1e3 if gflop and ms else None})
    total = sum(r["ms"] for r in rows)
    for r in rows:
        r["share"] = r["ms"] / total if total else 0.0
    rows.sort(key=lambda r: -r["ms"])
    return {"runs": runs, "threads": threads, "total_ms": total, "kinds": rows}


def by_op(result: dict) -> list[dict]:
    """The kinds summed per operator type, largest first."""
    out: dict[str, dict] = {}
    for r in result["kinds"]:
        o = out.setdefault(r["op"], {"op": r["op"], "nodes": 0, "ms": 0.0, "gflop": 0.0})
        o["nodes"] += r["nodes"]
        o["ms"] += r["ms"]
        o["gflop"] += r["gflop"]
    for o in out.values():
        o["share"] = o["ms"] / result["total_ms"] if result["total_ms"] else 0.0
        o["gflops"] = o["gflop"] / o["ms"] * 1e3 if o["gflop"] and o["ms"] else None
    return sorted(out.values(), key=lambda o: -o["ms"])


def _peak(threads: int) -> float | None:
    from whisper_ort.measure.hardware import load_floors

    floors = load_floors()  # hardware.CACHE, the one owner of that path
    return (floors.get(threads) or {}).get("gemm_peak_gflops")


def _line(r: dict, peak: float | None, width: int) -> str:
    rate = f"{r['gflops']:6.1f} GFLOP/s" + (f" ({100 * r['gflops'] / peak:3.0f} % of peak)" if peak else "") if r["gflops"] else ""
    name = r.get("kind", r["op"])
    return f"{name[:width]:{width}s} {r['nodes']:3d} nodes {r['ms']:7.1f} ms {100 * r['share']:5.1f} %  {rate}"


def main(argv=None) -> int:
    from whisper_ort.core.audio import AudioError, load_audio
    from whisper_ort.core.features import log_mel_batch
    from whisper_ort.core.folder import default_model_dir, resolve_variant, variant_dir
    from whisper_ort.measure.environment import cpu_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio-dir", default="audio")
    p.add_argument("--file", default="jfk.flac")
    p.add_argument("--onnx-dir", default=None, help="the model folder (default: the one the pipeline uses)")
    p.add_argument("--variant", default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--top", type=int, default=12, help="kinds of node to list")
    p.add_argument("--output", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    audio = Path(args.audio_dir) / args.file
    try:
        mel = log_mel_batch([load_audio(audio)])
    except (AudioError, OSError) as exc:
        raise SystemExit(f"{audio}: {exc}") from None
    base = Path(args.onnx_dir) if args.onnx_dir else default_model_dir()
    folder = variant_dir(base, resolve_variant(base, args.variant))
    result = {"cpu": cpu_model(), "model_dir": str(folder), "file": args.file, **profile(folder, mel, args.threads, args.runs)}
    peak = _peak(args.threads)
    result["gemm_peak_gflops"] = peak
    print(f"{folder / ENCODER}, {result['cpu']}, {args.threads} threads: {result['total_ms']:.1f} ms of kernels per window"
          f" (median of {args.runs} runs)" + (f"; GEMM peak {peak:.1f} GFLOP/s" if peak else ""))
    print("per operator:")
    for o in by_op(result):
        print("  " + _line(o, peak, 26))
    print("per kind of node:")
    for r in result["kinds"][: args.top]:
        print("  " + _line(r, peak, 50))
    if args.output:
        tmp = Path(args.output).with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""This machine's floors: FP32 GEMM peak, memory read bandwidth, and what whisper-base needs of them.

docs/DESIGN.md, "Measuring honestly": encoder floor = encoder FLOPs / GEMM peak; decoder floor
per token = bytes read per step / read bandwidth. Both peaks are measured here, on this
machine, at a given thread count, best of N (the machines are shared: the best run is the
one least disturbed by others), with ONNX Runtime's own kernels on tiny generated graphs
(the engine the pipeline uses), numpy alongside for comparison.

    floors(threads=2)            -> dict, measured once and cached in results/benchmarks/hardware.json
    encoder_flops(config)        -> FLOPs of one 30 s window, counted from the model dims
    onnx_matmul_flops(path, ...) -> the same count read off the ONNX graph (shape inference)
    decoder_step_bytes(config)   -> bytes one decoder step reads (weights, cross K/V, self K/V)
    vector_units(cpuinfo)        -> the CPU's FP32 FMA width and units per core, and so the clock
                                    the measured peak implies

FLOPs count 2 per multiply-accumulate, MatMul/Gemm/Conv only (softmax, GELU, layer norms
and adds are a few percent at most and no GEMM peak bounds them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from whisper_ort.study.paths import HARDWARE

# openai/whisper-base, from its config.json: used when no model folder is at hand.
WHISPER_BASE = {
    "d_model": 512,
    "encoder_layers": 6,
    "decoder_layers": 6,
    "encoder_ffn_dim": 2048,
    "decoder_ffn_dim": 2048,
    "num_mel_bins": 80,
    "max_source_positions": 1500,
    "vocab_size": 51865,
    "max_target_positions": 448,
}
N_FRAMES = 3000  # mel frames in a 30 s window; conv2 (stride 2) halves them to 1500 positions
FLOAT_BYTES = 4
PROMPT_TOKENS = 4  # <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>

# GEMM shapes (M, K, N) timed for the peak: the encoder's own, and a large square one.
GEMM_SHAPES = {
    "encoder_qkv_1500x512x512": (1500, 512, 512),
    "encoder_ffn1_1500x512x2048": (1500, 512, 2048),
    "encoder_ffn2_1500x2048x512": (1500, 2048, 512),
    "square_2048": (2048, 2048, 2048),
}
CACHE = Path(HARDWARE)


# ---------------------------------------------------------------- what the model needs


def model_config(model_dir: str | Path | None = None) -> dict:
    """The dims of config.json in model_dir (whisper-base's when there is none)."""
    cfg = dict(WHISPER_BASE)
    if model_dir is not None:
        path = Path(model_dir) / "config.json"
        if path.is_file():
            data = json.loads(path.read_text())
            cfg.update({k: data[k] for k in WHISPER_BASE if k in data})
    return cfg


def encoder_flops(config: dict | None = None, frames: int = N_FRAMES) -> dict:
    """FLOPs of the encoder on one window, by operation; `total` is their sum.

    conv1 n_mels -> d, kernel 3, over `frames`; conv2 d -> d, kernel 3, stride 2; then per
    layer Q, K, V and output projections, the scores (T x T x d) and attention-weighted
    values, and the FFN d -> ffn -> d.
    """
    c = config or WHISPER_BASE
    d, ffn, layers, mels = c["d_model"], c["encoder_ffn_dim"], c["encoder_layers"], c["num_mel_bins"]
    t = frames // 2
    macs = {
        "conv1": mels * 3 * d * frames,
        "conv2": d * 3 * d * t,
        "attn_qkv": layers * 3 * t * d * d,
        "attn_scores": layers * t * t * d,
        "attn_values": layers * t * t * d,
        "attn_out": layers * t * d * d,
        "ffn": layers * 2 * t * d * ffn,
    }
    flops = {k: 2 * v for k, v in macs.items()}
    flops["total"] = sum(flops.values())
    return flops


def decoder_weight_bytes(config: dict | None = None) -> dict:
    """Weights a decoder step reads: per layer self-attention q,k,v,o, cross-attention q,o
    (cross k,v are computed once, in the first step), the FFN, and the output projection
    (vocab x d, tied to the token embedding). Biases and layer norms are under 0.1 %."""
    c = config or WHISPER_BASE
    d, ffn, layers, vocab = c["d_model"], c["decoder_ffn_dim"], c["decoder_layers"], c["vocab_size"]
    per_layer = (4 * d * d) + (2 * d * d) + (2 * d * ffn)
    return {"layers": layers * per_layer * FLOAT_BYTES, "output_projection": vocab * d * FLOAT_BYTES}


def decoder_step_bytes(config: dict | None = None, position: int = 32, positions: int | None = None) -> dict:
    """Bytes one cached decoder step reads at `position` (tokens already in the self K/V):
    weights, the cross-attention K/V of all encoder positions, and the self K/V so far."""
    c = config or WHISPER_BASE
    d, layers = c["d_model"], c["decoder_layers"]
    positions = positions or c["max_source_positions"]
    out = decoder_weight_bytes(c)
    out["cross_kv"] = layers * 2 * positions * d * FLOAT_BYTES
    out["self_kv"] = layers * 2 * position * d * FLOAT_BYTES
    out["total"] = sum(out.values())
    return out


def bounded_head_bytes(config: dict | None = None, exact_dims: int = 32) -> int:
    """Bytes of the mha decoder's bounded logits head (decoder_graph._bounded_head): int8
    rows over d - exact_dims hidden dims, FP32 over exact_dims; in place of the FP32
    output projection in a step's reads (the few exactly rescored rows are noise)."""
    c = config or WHISPER_BASE
    return c["vocab_size"] * (exact_dims * FLOAT_BYTES + (c["d_model"] - exact_dims))


def decoder_first_flops(config: dict | None = None, prompt: int = PROMPT_TOKENS) -> dict:
    """FLOPs of the first decoder step: the cross-attention K/V of every encoder position
    (the bulk), the prompt through the layers and its logits."""
    c = config or WHISPER_BASE
    d, ffn, layers, vocab = c["d_model"], c["decoder_ffn_dim"], c["decoder_layers"], c["vocab_size"]
    t = c["max_source_positions"]
    macs = {
        "cross_kv": layers * 2 * t * d * d,
        "prompt_layers": layers * prompt * (6 * d * d + 2 * d * ffn + prompt * d * 2 + t * d * 2),
        "logits": prompt * d * vocab,
    }
    flops = {k: 2 * v for k, v in macs.items()}
    flops["total"] = sum(flops.values())
    return flops


def onnx_matmul_flops(path: str | Path, input_shapes: dict | None = None) -> dict:
    """FLOPs of MatMul, Gemm and Conv nodes of an ONNX graph, read off the graph itself.

    Symbolic dims of the inputs are fixed by `input_shapes` ({input: shape}; any symbolic
    dim left is taken as 1), then ONNX Runtime's symbolic shape inference gives every
    node's shapes. Returns {"MatMul": ..., "Conv": ..., "Gemm": ..., "total": ..., "nodes": n}.
    """
    counts = {"MatMul": 0, "Gemm": 0, "Conv": 0}
    by_node = onnx_node_flops(path, input_shapes)
    for op, flops in by_node.values():
        counts[op] += flops
    counts["total"] = sum(counts.values())
    counts["nodes"] = len(by_node)
    return counts


def onnx_node_flops(path: str | Path, input_shapes: dict | None = None) -> dict[str, tuple[str, int]]:
    """{node name: (op type, FLOPs)} for each MatMul, Gemm and Conv node (onnx_matmul_flops)."""
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = onnx.load(str(path))
    input_shapes = input_shapes or {}
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        wanted = input_shapes.get(inp.name)
        for i, dim in enumerate(dims):
            if wanted is not None:
                dim.dim_value = int(wanted[i])
            elif not dim.HasField("dim_value"):
                dim.dim_value = 1
    inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
    for init in inferred.graph.initializer:
        shapes[init.name] = list(init.dims)

    by_node = {}
    for index, node in enumerate(inferred.graph.node):
        if node.op_type not in ("MatMul", "Gemm", "Conv"):
            continue
        out = shapes.get(node.output[0])
        if not out or any(v is None for v in out):
            raise ValueError(f"{path}: no concrete shape for {node.op_type} {node.name!r}")
        if node.op_type == "Conv":
            w = shapes[node.input[1]]  # (out_ch, in_ch / group, *kernel)
            macs = int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type == "MatMul":
            a = shapes[node.input[0]]
            macs = int(np.prod(out)) * int(a[-1])
        else:  # Gemm: (M, K) x (K, N), transA flips A
            a = shapes[node.input[0]]
            trans_a = next((at.i for at in node.attribute if at.name == "transA"), 0)
            macs = int(np.prod(out)) * int(a[0] if trans_a else a[1])
        by_node[node.name or f"{node.op_type}_{index}"] = (node.op_type, 2 * macs)  # unnamed nodes stay apart
    return by_node


# ---------------------------------------------------------------- what the machine gives


def vector_units(cpuinfo: str | None = None) -> dict:
    """FP32 FLOPs per cycle per core from /proc/cpuinfo's vendor, family and flags.

    cpuinfo names the ISA, not how many FMA pipes a core has nor how wide they are, so those
    come from the vendors' documented microarchitectures: Zen 2-4 have two 256-bit FMA
    pipes (Zen 4 runs AVX-512 on them in two halves: 32 FLOPs a cycle), Zen 5 two 512-bit
    ones; Intel server cores with AVX-512 two 512-bit FMA units (a few low bins have one:
    "assumed"), AVX2 cores two 256-bit. The clock is not read (a VM's "cpu MHz" is the
    nominal one, not what the cores run at): `derive` gives the clock the measured GEMM
    peak implies at these units, beside cpuinfo's nominal MHz.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first CPU's
    flags = set(fields.get("flags", "").split())
    vendor, family = fields.get("vendor_id", ""), int(fields.get("cpu family", "0") or 0)
    if "avx512f" in flags:
        isa = "AVX-512"
        if vendor == "AuthenticAMD":
            units, width, basis = (2, 512, "Zen 5") if family >= 26 else (2, 256, "Zen 4: AVX-512 on 256-bit pipes")
        else:
            units, width, basis = 2, 512, "Intel AVX-512 server core (assumed: two FMA units)"
    elif "fma" in flags and "avx2" in flags:
        isa, units, width, basis = "AVX2", 2, 256, "two 256-bit FMA units"
    else:
        isa, units, width, basis = "SSE", 2, 128, "no FMA flags: two 128-bit units assumed"
    mhz = fields.get("cpu MHz")
    return {"isa": isa, "fma_units": units, "fma_bits": width, "basis": basis,
            "fp32_flops_per_cycle": units * (width // 32) * 2,  # lanes x 2 FLOPs per FMA
            "amx": "amx_tile" in flags, "avx512_bf16": "avx512_bf16" in flags,
            "nominal_mhz": float(mhz) if mhz else None}



def _ort_session(model, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])


def _matmul_model(m: int, k: int, n: int):
    """Y = X @ W with X (m, k) an input and W (k, n) an initializer, as the model's weights are.
    (The values do not change the speed of FP32 kernels as long as they are normal numbers.)"""
    from onnx import TensorProto, helper, numpy_helper

    w = np.full((k, n), 0.01, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "gemm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _best_of(fn, repeats: int, min_time_s: float = 0.0) -> float:
    """Smallest wall time of `repeats` calls (after one untimed call), and at least until
    min_time_s has been spent timing."""
    fn()
    best, spent, n = float("inf"), 0.0, 0
    while n < repeats or spent < min_time_s:
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        best, spent, n = min(best, dt), spent + dt, n + 1
    return best


def measure_gemm_ort(threads: int, shapes: dict | None = None, repeats: int = 10, passes: int = 3, pause_s: float = 1.0) -> dict:
    """GFLOP/s of ONNX Runtime's FP32 MatMul for each (M, K, N), best of `repeats` in each
    of `passes` rounds over the shapes, `pause_s` apart: on a shared machine a neighbour's
    busy spell of a few seconds can cover every repeat of one round (a study's peak of 109.7
    GFLOP/s at load 2.2, 143.1 in the quiet minute after, AMD EPYC Zen 3), and a peak
    measured low makes a floor the pipeline beats."""
    import onnxruntime as ort

    runs = {}
    for name, (m, k, n) in (shapes or GEMM_SHAPES).items():
        sess = _ort_session(_matmul_model(m, k, n), threads)
        x = np.random.default_rng(1).standard_normal((m, k), dtype=np.float32)
        binding = sess.io_binding()
        binding.bind_ortvalue_input("X", ort.OrtValue.ortvalue_from_numpy(x))
        binding.bind_ortvalue_output("Y", ort.OrtValue.ortvalue_from_shape_and_type([m, n], np.float32))
        runs[name] = ((m, k, n), lambda b=binding, s=sess: s.run_with_iobinding(b))
    best = dict.fromkeys(runs, float("inf"))
    for i in range(passes):
        if i:
            time.sleep(pause_s)
        for name, (_, run) in runs.items():
            best[name] = min(best[name], _best_of(run, repeats))
    return {name: {"m": m, "k": k, "n": n, "best_s": best[name], "gflops": 2.0 * m * k * n / best[name] / 1e9}
            for name, ((m, k, n), _) in runs.items()}


def measure_gemm_numpy(threads: int, shapes: dict | None = None, repeats: int = 10) -> dict:
    """GFLOP/s of numpy's float32 matmul (its BLAS limited to `threads` by threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    out = {}
    rng = np.random.default_rng(2)
    with threadpool_limits(limits=int(threads), user_api="blas"):
        for name, (m, k, n) in (shapes or GEMM_SHAPES).items():
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            c = np.empty((m, n), dtype=np.float32)
            best = _best_of(lambda a=a, b=b, c=c: np.matmul(a, b, out=c), repeats)
            out[name] = {"m": m, "k": k, "n": n, "best_s": best, "gflops": 2.0 * m * k * n / best / 1e9}
    return out


def measure_bandwidth(threads: int, size_mib: int = 256, repeats: int = 8) -> dict:
    """Read bandwidth in GB/s (1e9 bytes/s), best of `repeats`, three ways:

    - `numpy_sum`: numpy sum over a float32 array of size_mib (one thread);
    - `ort_reduce_sum`: ONNX Runtime ReduceSum over the same array at `threads`;
    - `ort_gemv`: ONNX Runtime MatMul (1 x 512) @ (512 x N) with a weight of size_mib: the
      decoder's own access pattern (one token through a weight matrix).

    Arrays are far larger than the last-level cache, so every pass reads DRAM.
    """
    import onnxruntime as ort
    from onnx import TensorProto, helper

    n = size_mib * 1024 * 1024 // FLOAT_BYTES
    arr = np.ones(n, dtype=np.float32)
    nbytes = arr.nbytes
    out = {"size_bytes": nbytes}

    best = _best_of(arr.sum, repeats)
    out["numpy_sum"] = {"best_s": best, "gbs": nbytes / best / 1e9}

    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["X"], ["Y"], keepdims=0)],
        "reduce",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [n])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [])],
    )
    sess = _ort_session(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), threads)
    binding = sess.io_binding()
    binding.bind_ortvalue_input("X", ort.OrtValue.ortvalue_from_numpy(arr))
    binding.bind_output("Y")
    best = _best_of(lambda: sess.run_with_iobinding(binding), repeats)
    out["ort_reduce_sum"] = {"best_s": best, "gbs": nbytes / best / 1e9}
    del arr, sess, binding

    k = 512
    cols = n // k
    gemv = _matmul_model(1, k, cols)
    sess = _ort_session(gemv, threads)
    del gemv
    x = np.ones((1, k), dtype=np.float32)
    binding = sess.io_binding()
    binding.bind_ortvalue_input("X", ort.OrtValue.ortvalue_from_numpy(x))
    binding.bind_ortvalue_output("Y", ort.OrtValue.ortvalue_from_shape_and_type([1, cols], np.float32))
    best = _best_of(lambda: sess.run_with_iobinding(binding), repeats)
    out["ort_gemv"] = {"best_s": best, "gbs": k * cols * FLOAT_BYTES / best / 1e9, "k": k, "n": cols}
    return out


# ---------------------------------------------------------------- floors


def _loadavg() -> tuple:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def measure(threads: int = 2, repeats: int = 10, bandwidth_mib: int = 256, model_dir: str | Path | None = None) -> dict:
    """Measure this machine at `threads` and derive the floors of whisper-base's stages."""
    load_before = _loadavg()
    started = time.perf_counter()
    gemm_ort = measure_gemm_ort(threads, repeats=repeats)
    gemm_numpy = measure_gemm_numpy(threads, repeats=max(3, repeats // 2))
    bandwidth = measure_bandwidth(threads, size_mib=bandwidth_mib, repeats=max(3, repeats // 2))
    out = derive(threads, gemm_ort, gemm_numpy, bandwidth, model_config(model_dir))
    out["measure_s"] = time.perf_counter() - started
    out["loadavg"] = [load_before[0], _loadavg()[0]]  # 1-minute load average before and after: others' work
    return out


def derive(threads: int, gemm_ort: dict, gemm_numpy: dict, bandwidth: dict, config: dict | None = None) -> dict:
    """The floors from measured peaks: GEMM peak = the best ORT MatMul shape, bandwidth = the
    best of the read measurements; encoder and first decoder step bound by compute, a
    decoder loop step by memory (the first step: whichever bound is higher)."""
    from whisper_ort.measure.environment import cpu_model, package_versions

    cfg = config or WHISPER_BASE
    peak = max(v["gflops"] for v in gemm_ort.values())
    encoder_shapes = [v["gflops"] for k, v in gemm_ort.items() if k.startswith("encoder_")]
    bw = max(v["gbs"] for v in bandwidth.values() if isinstance(v, dict) and "gbs" in v)
    enc = encoder_flops(cfg)
    first = decoder_first_flops(cfg)
    step = decoder_step_bytes(cfg)
    weights = decoder_weight_bytes(cfg)
    first_bytes = sum(weights.values()) + cfg["max_source_positions"] * cfg["d_model"] * FLOAT_BYTES
    units = vector_units()
    return {
        "threads": int(threads),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(("onnxruntime", "numpy", "onnx")),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gemm_peak_gflops": peak,  # best ORT MatMul over all shapes
        "vector_units": units,
        # the clock at which the cores' FMA units would give the measured peak (threads
        # beyond the CPUs share them)
        "implied_ghz": peak / (min(int(threads), os.cpu_count() or int(threads)) * units["fp32_flops_per_cycle"]),
        "gemm_encoder_shapes_gflops": max(encoder_shapes) if encoder_shapes else None,
        "gemm_ort": gemm_ort,
        "gemm_numpy": gemm_numpy,
        "bandwidth_gbs": bw,  # best read bandwidth over the ways measured
        "bandwidth": bandwidth,
        "encoder_flops": enc,
        "decoder_first_flops": first,
        "decoder_step_bytes": step,
        # floors, seconds
        "encoder_floor_s": enc["total"] / (peak * 1e9),
        "decoder_first_floor_s": max(first["total"] / (peak * 1e9), first_bytes / (bw * 1e9)),
        "decoder_step_floor_s": step["total"] / (bw * 1e9),
    }


def floors(threads: int = 2, cache: str | Path | None = CACHE, refresh: bool = False, **kwargs) -> dict:
    """The floors at `threads`, from the cache file when it holds them, else measured and
    written there (one entry per thread count). `refresh=True` measures again."""
    path = Path(cache) if cache else None
    data = {}
    if path is not None and path.is_file():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
    key = str(int(threads))
    by_threads = data.setdefault("by_threads", {})
    if refresh or key not in by_threads:
        by_threads[key] = measure(threads, **kwargs)
        if path is not None:
            from whisper_ort.measure.records import write_json

            data["by_threads"] = dict(sorted(by_threads.items(), key=lambda kv: int(kv[0])))
            write_json(path, data)
    return by_threads[key]


def load_floors(path: str | Path = CACHE) -> dict:
    """{threads: floors} from a hardware.json ({} when there is none)."""
    path = Path(path)
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {int(k): v for k, v in data.get("by_threads", {}).items()}


def units_sentence(f: dict) -> str:
    """What the vector units say of the measured peak ("" for records made before they were read)."""
    u = f.get("vector_units")
    if not u or not f.get("implied_ghz"):
        return ""
    nominal = f", cpuinfo's nominal clock {u['nominal_mhz']:.0f} MHz" if u.get("nominal_mhz") else ""
    return (f"{u['isa']}, {u['fma_units']} x {u['fma_bits']}-bit FMA per core ({u['basis']}): {u['fp32_flops_per_cycle']} FP32 FLOPs a cycle, "
            f"so the peak at {f['threads']} thread(s) implies {f['implied_ghz']:.2f} GHz{nominal}")


def describe(f: dict) -> str:
    units = units_sentence(f)
    return (
        f"{f['cpu_model']}, {f['threads']} thread(s): FP32 GEMM peak {f['gemm_peak_gflops']:.1f} GFLOP/s "
        f"(ORT MatMul, best shape), read bandwidth {f['bandwidth_gbs']:.1f} GB/s\n"
        + (units + "\n" if units else "") +
        f"encoder {f['encoder_flops']['total'] / 1e9:.1f} GFLOP/window -> floor {1e3 * f['encoder_floor_s']:.0f} ms; "
        f"decoder step {f['decoder_step_bytes']['total'] / 1e6:.0f} MB -> floor {1e3 * f['decoder_step_floor_s']:.2f} ms/token; "
        f"first step floor {1e3 * f['decoder_first_floor_s']:.0f} ms"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m whisper_ort.measure.hardware", description="measure this machine's GEMM peak and read bandwidth")
    p.add_argument("--threads", type=int, nargs="+", default=[2])
    p.add_argument("--cache", default=str(CACHE))
    p.add_argument("--refresh", action="store_true", help="measure again even when the cache holds the thread count")
    args = p.parse_args(argv)
    for n in args.threads:
        print(describe(floors(n, cache=args.cache, refresh=args.refresh)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Would OpenVINO run our own graphs faster than ONNX Runtime's CPU provider (MLAS)? Per stage.

The lever the issue names is ONNX Runtime's OpenVINO execution provider, a plugin EP
(`onnxruntime-ep-openvino`). That plugin offers devices only on Intel hardware (its
factory skips every device whose vendor is not Intel), so on an AMD CPU it has no device
to give. What it would run is OpenVINO's CPU plugin on our graph, so this module times
that directly as well (the `openvino` runtime, FP32 precision hint, the same threads), and
the plugin EP itself where it offers a CPU device:

    ort_cpu        our session as the pipeline runs it (MLAS)
    openvino       openvino.Core().compile_model(graph, "CPU", f32, threads), inputs shared
    ort_openvino_ep  ONNX Runtime with the OpenVINO plugin EP (FP32), where it has a device

for two stages: the encoder (one 30 s window of a real file) and one greedy decoder step
(the mha graph, batch 1, one new token, a past of half the file's tokens, the file's real
cross K/V). Medians of interleaved runs, and the largest output difference against ort_cpu.

    python -m whisper_ort.measure.openvino_stages --audio-dir samples --file jfk.flac
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

PLUGIN_NAME = "whisper_ort_openvino_ep"


def openvino_ep_device():
    """(the plugin EP's CPU device or None, why not)."""
    try:
        import onnxruntime as ort
        import onnxruntime_ep_openvino as plugin
    except ImportError as exc:
        return None, f"onnxruntime-ep-openvino is not installed ({exc})"
    try:
        ort.register_execution_provider_library(PLUGIN_NAME, plugin.get_library_path())
    except Exception as exc:  # already registered in this process, or the library does not load
        if "already registered" not in str(exc):
            return None, f"the plugin did not load: {exc}"
    cpus = [d for d in ort.get_ep_devices() if d.ep_name == plugin.get_ep_name() and d.ep_metadata.get("ov_device") == "CPU"]
    if not cpus:
        return None, "the plugin offers no CPU device here (it only lists Intel hardware)"
    return cpus[0], ""


def _openvino_runner(graph: Path, threads: int, feeds: dict, output: str):
    import openvino as ov

    compiled = ov.Core().compile_model(str(graph), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": str(threads),
                                                           "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()

    def run():
        request.infer(feeds, share_inputs=True)  # no copy of the 36 MB of cross K/V a step
        return request.get_tensor(output).data
    return run


def _ort_runner(graph: Path, options, feeds: dict, output: str, device=None):
    import onnxruntime as ort

    if device is not None:
        options.add_provider_for_devices([device], {"precision": "FP32"})
    session = ort.InferenceSession(str(graph), options, providers=None if device is not None else ["CPUExecutionProvider"])
    return lambda: session.run([output], feeds)[0]


def stage_feeds(transcriber, path: Path) -> dict:
    """{stage: (graph, role, feeds, output to compare)} from one real file."""
    from whisper_ort.core.decoders import MhaSessions
    from whisper_ort.measure.speculation import mha_step_feeds, past_at_half

    sessions = transcriber.sessions
    if not isinstance(sessions, MhaSessions):
        raise SystemExit(f"{sessions.folder}: the stages are timed on the mha folder (whisper-ort optimize builds it)")
    mel, seq, self_kv, cross_kv = past_at_half(transcriber, path)
    token = np.array([[seq["tokens"][len(seq["tokens"]) // 2]]], dtype=np.int64)
    step = {**mha_step_feeds(sessions, token, self_kv, cross_kv), "logit_mask": np.zeros((1, sessions.vocab_size), dtype=np.float32)}
    folder = sessions.folder
    return {"encoder": (folder / "encoder_model.onnx", "encoder", {"input_features": mel}, "cross.5.value"),
            "decoder_step": (folder / "decoder_mha.onnx", "decoder", step, "hidden")}


def measure(transcriber, path: Path, rounds: int = 10) -> dict:
    config = transcriber.sessions.config
    device, why_not = openvino_ep_device()
    out = {"ort_openvino_ep": "timed" if device is not None else why_not, "stages": {}}
    for stage, (graph, role, feeds, output) in stage_feeds(transcriber, path).items():
        runners = {"ort_cpu": _ort_runner(graph, config.options(role), feeds, output),
                   "openvino": _openvino_runner(graph, config.threads, feeds, output)}
        if device is not None:
            runners["ort_openvino_ep"] = _ort_runner(graph, config.options(role), feeds, output, device)
        reference = runners["ort_cpu"]()
        diffs = {name: float(np.abs(np.asarray(run()) - reference).max()) for name, run in runners.items()}
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(rounds):
            for name, run in runners.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        base = float(np.median(times["ort_cpu"]))
        out["stages"][stage] = {name: {"median_s": float(np.median(t)), "ratio_to_ort_cpu": float(np.median(t)) / base,
                                       "max_abs_diff": diffs[name]} for name, t in times.items()}
    return out


def main(argv=None) -> int:
    from whisper_ort.core.pipeline import Transcriber
    from whisper_ort.measure.environment import cpu_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio-dir", default="audio")
    p.add_argument("--file", default="jfk.flac")
    p.add_argument("--onnx-dir", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=10, help="interleaved timed runs per stage and runner")
    p.add_argument("--output", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    path = Path(args.audio_dir) / args.file
    if not path.is_file():
        raise SystemExit(f"{path}: no such file")
    transcriber = Transcriber(args.onnx_dir, threads=args.threads)
    result = {"cpu": cpu_model(), "threads": args.threads, "file": path.name, **measure(transcriber, path, args.rounds)}
    print(f"{result['cpu']}, {args.threads} threads, {path.name}; ONNX Runtime's OpenVINO plugin EP: {result['ort_openvino_ep']}")
    for stage, runners in result["stages"].items():
        for name, r in runners.items():
            print(f"{stage:13s} {name:16s} {1000 * r['median_s']:8.2f} ms  {r['ratio_to_ort_cpu']:.2f}x ort_cpu"
                  f"  max |diff| {r['max_abs_diff']:.2e}")
    if args.output:
        from whisper_ort.measure.records import write_json

        write_json(args.output, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

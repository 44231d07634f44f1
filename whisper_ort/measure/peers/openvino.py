"""OpenVINO GenAI's WhisperPipeline on the same weights: the peer an Intel user would pick.

Two labelled settings, both `INFERENCE_NUM_THREADS=N` on the CPU plugin:

    openvino_fp32     INFERENCE_PRECISION_HINT=f32: FP32 arithmetic, like every other row
    openvino_default  the plugin's own choice: BF16 where the CPU has it (AMX on Xeon,
                      AVX512_BF16 on Zen 4), FP32 elsewhere; not an FP32 figure

The model folder `whisper-base-openvino/` sits beside the ONNX folder and is built on
first use from the FP32 transformers folder (`whisper-base-with-past-hf/`) with
optimum-intel's exporter (`main_export`, weights kept FP32, offline), ~30 s. optimum-intel
is installed without its dependencies (Makefile): its pins would bring torchvision, which
does not import beside torch 2.13, and a newer optimum; the Whisper export needs neither.

Greedy (`num_beams=1`; `num_beams=N` with compare --beam-size N), language and task forced, no timestamps, `max_new_tokens` per
window; audio decoded by librosa at 16 kHz as the transformers peers do. Stages:
t_load_audio, then GenAI's own perf metrics: t_features, t_encoder, t_decoder_loop (every
decoder inference, the first step included: GenAI does not split it off), t_detokenize.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from whisper_ort.measure.records import Record

from ._common import Peer, load_audio_librosa, offline_env

OV_DIR_NAME = "whisper-base-openvino"
_STAMP = "whisper_ort_openvino.json"
_FILES = ("openvino_encoder_model.xml", "openvino_decoder_model.xml", "openvino_tokenizer.xml", "openvino_detokenizer.xml")


def openvino_folder(onnx_dir) -> Path:
    return Path(onnx_dir).resolve().with_name(OV_DIR_NAME)


def ensure_openvino_model(onnx_dir, log=None) -> Path:
    """Build `whisper-base-openvino/` beside onnx_dir unless it is complete (its stamp written last)."""
    from whisper_ort.build.export import _swap_in, hf_folder

    dest = openvino_folder(onnx_dir)
    if (dest / _STAMP).is_file() and all((dest / n).is_file() for n in _FILES):
        return dest
    offline_env()
    from optimum.exporters.openvino import main_export

    hf_dir = hf_folder(onnx_dir)
    if not (hf_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"{hf_dir}: no FP32 transformers folder to export from (run `whisper-ort export`)")
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{OV_DIR_NAME}-", dir=dest.parent))
    try:
        # Weights stay FP32: optimum-intel compresses to int8 only when asked (or above 1B parameters).
        main_export(str(hf_dir), output=str(tmp), task="automatic-speech-recognition-with-past", convert_tokenizer=True)
        import openvino

        (tmp / _STAMP).write_text(json.dumps({"source": str(hf_dir), "openvino": openvino.__version__, "weights": "fp32"}, indent=2) + "\n")
        tmp.chmod(0o755)
        _swap_in(tmp, dest)  # renames only: no half-built folder at dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if log:
        log(f"built {dest} in {time.perf_counter() - start:.1f} s")
    return dest


class OpenVINOPeer(Peer):
    name = "openvino_fp32"
    variant = "genai_f32"
    precision_hint: str | None = "f32"

    def _load(self) -> None:
        import openvino_genai

        self.model_dir = ensure_openvino_model(self.onnx_dir)
        properties = {"INFERENCE_NUM_THREADS": self.threads}
        if self.precision_hint:
            properties["INFERENCE_PRECISION_HINT"] = self.precision_hint
        self.properties = properties
        self.pipeline = openvino_genai.WhisperPipeline(str(self.model_dir), "CPU", **properties)
        self.config = self.pipeline.get_generation_config()
        self.config.language = f"<|{self.language}|>"
        self.config.task = self.task
        self.config.return_timestamps = False
        self.config.num_beams = self.beam_size  # 1: greedy; compare --beam-size N: GenAI's beam search
        self.config.max_new_tokens = self.max_new_tokens

    def info(self) -> dict:
        import openvino

        return {
            **super().info(),
            "model_dir": str(self.model_dir),
            "settings": {
                "openvino": openvino.__version__,
                "device": "CPU",
                **self.properties,
                "inference_precision": _compiled_precision(self.model_dir, self.properties),
                "num_beams": self.beam_size,
                "return_timestamps": False,
                "max_new_tokens": self.max_new_tokens,
            },
        }

    def _transcribe(self, path: Path, record: Record) -> None:
        start = time.perf_counter()
        audio = load_audio_librosa(path)
        record.t_load_audio = time.perf_counter() - start
        result = self.pipeline.generate(audio.tolist(), self.config)
        record.text = "".join(result.texts)
        metrics = result.perf_metrics
        record.n_tokens = int(metrics.get_num_generated_tokens())
        # GenAI's own timers, in ms: log-mel, encoder, every decoder inference, detokenize.
        record.t_features = metrics.get_features_extraction_duration().mean / 1000.0
        record.t_encoder = metrics.get_encode_inference_duration().mean / 1000.0
        record.t_decoder_loop = metrics.get_decode_inference_duration().mean / 1000.0
        record.t_detokenize = metrics.get_detokenization_duration().mean / 1000.0
        record.duration_s = audio.size / 16000
        record.n_windows = max(1, -(-audio.size // (30 * 16000)))


class OpenVINODefaultPeer(OpenVINOPeer):
    name = "openvino_default"
    variant = "genai_default_precision"
    precision_hint = None


def _compiled_precision(model_dir: Path, properties: dict) -> str:
    """The precision the CPU plugin picks for these properties (bf16 on AMX / AVX512_BF16 CPUs)."""
    import openvino

    core = openvino.Core()
    compiled = core.compile_model(str(model_dir / "openvino_encoder_model.xml"), "CPU", properties)
    return str(compiled.get_property("INFERENCE_PRECISION_HINT"))

"""Names the study's tables and plots share: stages, implementations, their labels and colours."""

from whisper_ort.study.paths import NATIVE

STAGES = ("t_load_audio", "t_features", "t_encoder", "t_decoder_first", "t_decoder_loop", "t_detokenize")
STAGE_LABELS = {
    "t_load_audio": "load audio",
    "t_features": "log-mel",
    "t_encoder": "encoder",
    "t_decoder_first": "decoder first step",
    "t_decoder_loop": "decoder loop",
    "t_detokenize": "detokenize",
    "t_other": "other (not attributed)",
    "t_total": "total",
}
STAGE_COLORS = {
    "t_load_audio": "#8c8c8c",
    "t_features": "#e6a23c",
    "t_encoder": "#2f6db5",
    "t_decoder_first": "#7fb3e6",
    "t_decoder_loop": "#d1495b",
    "t_detokenize": "#66a182",
    "t_other": "#d9d9d9",
    "t_total": "#222222",
}
IMPL_ORDER = ("whisper_ort", "faster_whisper", "openvino_fp32", "openvino_default", "optimum_ort", "hf_generate", "hf_pipeline")
IMPL_COLORS = {
    "whisper_ort": "#d1495b",
    "faster_whisper": "#2f6db5",
    "optimum_ort": "#e6a23c",
    "hf_generate": "#66a182",
    "hf_pipeline": "#8c6bb1",
    "openvino_fp32": "#1b9e9e",
    "openvino_default": "#8fd3d3",
}
SERVER_COLORS = {  # measure.serving's servers
    "batched": "#d1495b",
    "one_at_a_time": "#e6a23c",
    "faster_whisper": "#2f6db5",
}
REFERENCE_IMPL = "hf_generate"
PLOT_FORMATS = ("png", "svg")
SCALING_STAGES = ("t_features", "t_encoder", "t_decoder_first", "t_decoder_loop", "t_total")

__all__ = ["NATIVE", "STAGES", "STAGE_LABELS", "STAGE_COLORS", "IMPL_ORDER", "IMPL_COLORS", "SERVER_COLORS", "REFERENCE_IMPL", "PLOT_FORMATS", "SCALING_STAGES"]

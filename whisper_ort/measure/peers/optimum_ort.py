"""optimum's `ORTModelForSpeechSeq2Seq` on the same ONNX folder, with transformers' `generate`.

ONNX Runtime CPU provider, `intra_op_num_threads=N`, `inter_op_num_threads=1`, graph
optimizations at their default (all), optimum's defaults otherwise: with
`decoder_model_merged.onnx` present it runs the merged decoder (one session for the first
step and the cached steps). The processor is read from the ONNX folder. Decoding is the
same processor + `generate` path as hf_generate (see `_hf`), so the two differ only in
the engine under `generate`.
"""

from __future__ import annotations

from pathlib import Path

from whisper_ort.measure.records import Record

from ._common import Peer, StageTimer, offline_env, set_torch_threads
from ._hf import generate_kwargs, load_processor, transcribe_generate


class OptimumORTPeer(Peer):
    name = "optimum_ort"
    variant = "ort_fp32"

    def _load(self) -> None:
        offline_env()
        import onnxruntime as ort
        from optimum.onnxruntime import ORTModelForSpeechSeq2Seq

        # torch still runs the glue in generate (logits processors, argmax): same threads.
        set_torch_threads(self.threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self.session_options = options
        self.processor = load_processor(self.onnx_dir)
        self.model = ORTModelForSpeechSeq2Seq.from_pretrained(
            str(self.onnx_dir),
            provider="CPUExecutionProvider",
            session_options=options,
            use_cache=True,
            local_files_only=True,
        )
        self.timer = StageTimer()
        self.timer.wrap_encoder(self.model.encoder)
        self.timer.wrap_decoder(self.model.decoder)
        if getattr(self.model, "decoder_with_past", None) is not None:
            self.timer.wrap_decoder(self.model.decoder_with_past)
        self.variant = "ort_fp32_merged" if "use_cache_branch" in self.model.decoder.input_names else "ort_fp32"
        self.gen_kwargs = generate_kwargs(self.language, self.task, self.max_new_tokens)

    def info(self) -> dict:
        import onnxruntime as ort

        decoders = [self.model.decoder.session._model_path] if hasattr(self.model.decoder.session, "_model_path") else []
        return {
            **super().info(),
            "model_dir": str(self.onnx_dir),
            "settings": {
                "provider": "CPUExecutionProvider",
                "intra_op_num_threads": self.threads,
                "inter_op_num_threads": 1,
                "graph_optimization_level": str(self.session_options.graph_optimization_level),
                "merged_decoder": self.variant.endswith("merged"),
                "decoder_files": decoders,
                "onnxruntime": ort.__version__,
                "long_form": "generate long-form (full features, timestamps forced by transformers)",
                **self.gen_kwargs,
            },
        }

    def _transcribe(self, path: Path, record: Record) -> None:
        transcribe_generate(self.model, self.processor, self.timer, path, record, self.gen_kwargs)

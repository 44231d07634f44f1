"""transformers, torch FP32: WhisperProcessor + `model.generate` (the seed's Python baseline).

Its transcripts are the reference ones (`results/reference/inference_per_file.json`).
The model is the FP32 folder beside the ONNX one (`whisper-base-with-past-hf/`, from
`export.hf_folder`), run with `torch.set_num_threads(N)` and one inter-op thread, greedy
(`num_beams=1, do_sample=False`), language and task forced, `max_new_tokens` per window.
Long files: generate's own long-form (see `_hf`). Stages: load_audio, features, encoder,
decoder first step / loop (timed around the torch modules' forward), detokenize.
"""

from __future__ import annotations

from pathlib import Path

from whisper_ort.measure.records import Record

from ._common import Peer, StageTimer, set_torch_threads
from ._hf import generate_kwargs, load_hf_model, transcribe_generate


class HFGeneratePeer(Peer):
    name = "hf_generate"
    variant = "torch_fp32"

    def _load(self) -> None:
        set_torch_threads(self.threads)
        self.model_dir, self.processor, self.model = load_hf_model(self.onnx_dir)
        self.timer = StageTimer()
        self.timer.wrap_encoder(self.model.model.encoder)
        self.timer.wrap_decoder(self.model.model.decoder)
        self.gen_kwargs = generate_kwargs(self.language, self.task, self.max_new_tokens)

    def info(self) -> dict:
        import torch

        return {
            **super().info(),
            "model_dir": str(self.model_dir),
            "settings": {
                "torch_threads": torch.get_num_threads(),
                "torch_interop_threads": torch.get_num_interop_threads(),
                "dtype": "float32",
                "long_form": "generate long-form (full features, timestamps forced by transformers)",
                **self.gen_kwargs,
            },
        }

    def _transcribe(self, path: Path, record: Record) -> None:
        transcribe_generate(self.model, self.processor, self.timer, path, record, self.gen_kwargs)

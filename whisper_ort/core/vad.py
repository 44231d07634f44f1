"""Silero VAD (snakers4/silero-vad, MIT) run by ONNX Runtime: speech timestamps, then speech
merged into windows of at most 30 s, as faster-whisper's BatchedInferencePipeline does.

The ONNX file is the one faster-whisper ships (assets/silero_vad_v6.onnx): inputs
`input` (n, 64 + 512), `h`, `c` (1, 1, 128); one speech probability per 512-sample frame
(32 ms), each frame given the 64 samples before it as context. `whisper-ort optimize`
copies it into the model folder (build/vad.py); this module only reads it, so the runtime
needs neither faster-whisper nor CTranslate2. The thresholds and durations below are
faster-whisper's vad.py get_speech_timestamps, with the options its batched pipeline uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

VAD_FILE = "silero_vad_v6.onnx"
VAD_LICENSE = "silero_vad_v6.LICENSE"
SAMPLE_RATE = 16000
FRAME = 512  # samples per speech probability
CONTEXT = 64  # samples of the previous frame each frame is given
BLOCK = 10000  # frames per session run (faster-whisper's batch)


@dataclass(frozen=True)
class VadOptions:
    """faster-whisper's VadOptions as BatchedInferencePipeline sets them (max_speech_duration_s
    = the 30 s chunk, min_silence_duration_ms=160); its other defaults unchanged."""

    threshold: float = 0.5  # a frame above is speech
    neg_threshold: float | None = None  # below ends speech; None: threshold - 0.15
    min_speech_duration_ms: int = 0
    max_speech_duration_s: float = 30.0
    min_silence_duration_ms: int = 160
    speech_pad_ms: int = 400


class SileroVad:
    """One ONNX Runtime session on the Silero file; `speech(samples)` gives speech spans."""

    def __init__(self, path: str | Path):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing: chunking='vad' needs Silero VAD in the model folder (run `whisper-ort optimize`)")
        from whisper_ort.core.session import pool_threads

        opts = ort.SessionOptions()
        if pool_threads() is None:
            opts.intra_op_num_threads = 1  # a small LSTM: one thread, as faster-whisper runs it
            opts.inter_op_num_threads = 1
        else:  # the process-wide pool exists (--shared-pool): ONNX Runtime refuses any other
            opts.use_per_session_threads = False
        opts.log_severity_level = 4
        self.path = path
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of every 512-sample frame (the last one zero-padded)."""
        samples = np.asarray(samples, dtype=np.float32)
        # Frames as faster-whisper builds them (the signal zero-padded by a full frame more when
        # already a multiple; each frame led by the last CONTEXT samples of the one before, the
        # first by zeros), built block by block: an hour of audio is never copied whole.
        n_frames = len(samples) // FRAME + 1
        h = np.zeros((1, 1, 128), np.float32)
        c = np.zeros((1, 1, 128), np.float32)
        out = []
        for i in range(0, n_frames, BLOCK):  # faster-whisper's encoder batch
            j = min(i + BLOCK, n_frames)
            frames = samples[i * FRAME : j * FRAME]
            frames = np.pad(frames, (0, (j - i) * FRAME - len(frames))).reshape(-1, FRAME)
            before = samples[i * FRAME - CONTEXT : i * FRAME] if i else np.zeros(CONTEXT, np.float32)
            context = np.concatenate([before[None, :], frames[:-1, -CONTEXT:]], axis=0)
            batch = np.ascontiguousarray(np.concatenate([context, frames], axis=1))
            probs, h, c = self.session.run(None, {"input": batch, "h": h, "c": c})
            out.append(probs.reshape(-1))
        return np.concatenate(out)

    def speech(self, samples: np.ndarray, options: VadOptions = VadOptions()) -> list[tuple[int, int]]:
        """Speech spans (start, stop) in samples, padded, in order, not overlapping."""
        return speech_spans(self.probabilities(samples), len(samples), options)


def speech_spans(probs: np.ndarray, n_samples: int, options: VadOptions = VadOptions(), sr: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """faster-whisper's get_speech_timestamps after the model: hysteresis on the frame
    probabilities, a span ends after min_silence of silence, spans longer than max_speech are
    split at their last silence over 98 ms (else cut), then padded by speech_pad each side."""
    threshold = options.threshold
    neg = options.neg_threshold if options.neg_threshold is not None else max(threshold - 0.15, 0.01)
    min_speech = sr * options.min_speech_duration_ms / 1000
    pad = sr * options.speech_pad_ms / 1000
    max_speech = sr * options.max_speech_duration_s - FRAME - 2 * pad
    min_silence = sr * options.min_silence_duration_ms / 1000
    min_silence_at_max = sr * 98 / 1000

    triggered = False
    speeches: list[list[int]] = []
    current: list[int] = []  # [start] or [start, end]
    temp_end = prev_end = next_start = 0
    for i, p in enumerate(probs):
        at = FRAME * i
        if p >= threshold and temp_end:
            temp_end = 0
            if next_start < prev_end:
                next_start = at
        if p >= threshold and not triggered:
            triggered = True
            current = [at]
            continue
        if triggered and at - current[0] > max_speech:
            if prev_end:
                speeches.append([current[0], prev_end])
                if next_start < prev_end:  # silence since, not yet speech again
                    triggered, current = False, []
                else:
                    current = [next_start]
                prev_end = next_start = temp_end = 0
            else:
                speeches.append([current[0], at])
                current, prev_end, next_start, temp_end, triggered = [], 0, 0, 0, False
                continue
        if p < neg and triggered:
            if not temp_end:
                temp_end = at
            if at - temp_end > min_silence_at_max:
                prev_end = temp_end
            if at - temp_end < min_silence:
                continue
            if temp_end - current[0] > min_speech:
                speeches.append([current[0], temp_end])
            current, prev_end, next_start, temp_end, triggered = [], 0, 0, 0, False
            continue
    if current and n_samples - current[0] > min_speech:
        speeches.append([current[0], n_samples])

    # Pad: by speech_pad each side, or half the gap when two spans are closer than twice that.
    for i, s in enumerate(speeches):
        if i == 0:
            s[0] = int(max(0, s[0] - pad))
        if i != len(speeches) - 1:
            gap = speeches[i + 1][0] - s[1]
            if gap < 2 * pad:
                s[1] += int(gap // 2)
                speeches[i + 1][0] = int(max(0, speeches[i + 1][0] - gap // 2))
            else:
                s[1] = int(min(n_samples, s[1] + pad))
                speeches[i + 1][0] = int(max(0, speeches[i + 1][0] - pad))
        else:
            s[1] = int(min(n_samples, s[1] + pad))
    return [(int(a), int(b)) for a, b in speeches]


def merge_spans(spans: list[tuple[int, int]], max_samples: int) -> list[list[tuple[int, int]]]:
    """Consecutive speech spans grouped while their total length stays <= max_samples:
    faster-whisper's collect_chunks (each group is one window; the silence between its spans
    is left out). A span longer than max_samples alone is its own group."""
    groups: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    length = 0
    for start, stop in spans:
        if current and length + (stop - start) > max_samples:
            groups.append(current)
            current, length = [], 0
        current.append((start, stop))
        length += stop - start
    if current:
        groups.append(current)
    return groups

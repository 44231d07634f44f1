"""Sequential long-form decoding: transformers' long-form generate, token for token."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_ort.core.audio import load_audio
from whisper_ort.core.sequential import prompt_tokens, split_segments

BEGIN = 50364  # <|0.00|>
SR = 16000


def _long_file(audio_dir, seconds: float, seed: int = 13) -> np.ndarray:
    """Dev clips with reference texts (JFK, LJ Speech) in a shuffled order, 0.4-1.6 s pauses."""
    rng = np.random.default_rng(seed)
    clips = [load_audio(audio_dir / n) for n in ("jfk.flac", "lj_LJ001-0001.wav", "lj_LJ001-0002.wav", "lj_LJ001-0003.wav", "lj_LJ001-0004.wav")]
    parts, total = [], 0
    while total < seconds * SR:
        for i in rng.permutation(len(clips)):
            pause = np.zeros(int(rng.uniform(0.4, 1.6) * SR), np.float32)
            parts += [clips[i], pause]
            total += len(clips[i]) + len(pause)
    return np.concatenate(parts)[: int(seconds * SR)]


def test_split_segments_follows_transformers():
    # two complete segments, then an unfinished one: seek to the last complete one's end
    toks = [BEGIN, 10, 11, BEGIN + 50, BEGIN + 50, 12, BEGIN + 120, BEGIN + 125, 13, 14]
    segs, offset = split_segments(toks, BEGIN, 30.0, 3000)
    assert [(s.start, s.end) for s in segs] == [(30.0, 31.0), (31.0, 32.4)]
    assert segs[1].tokens == [BEGIN + 50, 12, BEGIN + 120, BEGIN + 125]  # transformers keeps the next start stamp
    assert offset == 120 * 2
    # a single timestamp at the end: the window is done
    segs, offset = split_segments([BEGIN, 10, BEGIN + 40, BEGIN + 40, 11, BEGIN + 90], BEGIN, 0.0, 2500)
    assert offset == 2500 and segs[-1].tokens == [BEGIN + 40, 11, BEGIN + 90]
    # no pair of timestamps: one segment up to the last timestamp
    segs, offset = split_segments([BEGIN, 10, 11, BEGIN + 70], BEGIN, 5.0, 3000)
    assert len(segs) == 1 and segs[0].end == pytest.approx(6.4) and offset == 3000


def test_log_mel_frames_matches_the_long_form_extractor(audio_dir, hf_reference):
    from whisper_ort.core.features import log_mel_frames

    processor, _ = hf_reference
    samples = load_audio(audio_dir / "silero_test.wav")
    ref = processor.feature_extractor(samples, sampling_rate=SR, return_tensors="np", truncation=False, padding="longest").input_features[0]
    ours = log_mel_frames(samples)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-4


def _reference_tokens(hf_reference, samples: np.ndarray, condition: bool = False) -> list[int]:
    import torch

    processor, model = hf_reference
    inputs = processor(samples, sampling_rate=SR, return_tensors="pt", truncation=False, padding="longest", return_attention_mask=True)
    with torch.inference_mode():
        out = model.generate(inputs.input_features, attention_mask=inputs.attention_mask, return_timestamps=True, language="en",
                             task="transcribe", condition_on_prev_tokens=condition, temperature=0.0)
    return [t for t in out[0].tolist() if t != 50257]  # padding / end of text


# Greedy at temperature 0 with nothing that transformers' long-form generate would not do.
EXACT = dict(chunking="sequential", max_new_tokens=448, max_repeats=0, compression_ratio_threshold=None, logprob_threshold=None, no_speech_threshold=None)


@pytest.mark.slow
@pytest.mark.parametrize("source,condition", [("dev_clips_150s", False), ("silero_test.wav", True)], ids=["dev_clips_150s", "silero_test-conditioned"])
def test_tokens_equal_transformers_long_form(source, condition, audio_dir, transcriber, hf_reference):
    """The walk against transformers' long-form generate: on 150 s of dev clips with pauses
    (6 windows), and on 60 s of continuous speech (3 windows) with condition_on_previous_text,
    transformers' condition_on_prev_tokens (there its tokens differ from the unprompted walk's:
    a prompt that did not reach the decoder fails too). One file each: the walk is the same
    code either way, and each reference costs transformers ~15-40 s here."""
    samples = load_audio(audio_dir / source) if source.endswith(".wav") else _long_file(audio_dir, 150.0)
    ours = transcriber.transcribe(samples, condition_on_previous_text=condition, **EXACT)
    ref = _reference_tokens(hf_reference, samples, condition=condition)
    assert ours.n_windows >= 2
    assert ours.tokens == ref
    assert all(a.start <= b.start for a, b in zip(ours.segments, ours.segments[1:]))


def test_prompt_tokens_pass_on_one_closing_timestamp_as_transformers():
    """The next window's prompt from a window's segments: transformers' own helper on the same
    segments (a window ending in two timestamps passes the first on, one ending in one passes it)."""
    import torch
    from transformers.models.whisper.generation_whisper import _pad_to_max_length

    for toks in ([BEGIN, 10, 11, BEGIN + 50, BEGIN + 50, 12, BEGIN + 120, BEGIN + 120],  # ends on a pair
                 [BEGIN, 10, BEGIN + 40, BEGIN + 40, 11, BEGIN + 90],  # a single timestamp at the end
                 [BEGIN, 10, 11, BEGIN + 70],  # one segment
                 [BEGIN, 10, 11, BEGIN + 50, BEGIN + 50, 12, BEGIN + 120, BEGIN + 125, 13]):  # the tail cut off
        segments, _ = split_segments(toks, BEGIN, 0.0, 3000)
        theirs = _pad_to_max_length([[{"tokens": torch.tensor(s.tokens)} for s in segments]], 50257, "cpu", padding_side="left",
                                    skip_ending_double_timestamps=True, timestamp_begin=BEGIN)
        assert prompt_tokens(segments, BEGIN) == theirs[0].tolist(), toks


@pytest.mark.slow
def test_fallback_and_no_speech(transcriber, audio_dir):
    """With openai/whisper's defaults on: silence gives no text, speech keeps its words, and a
    window that fails the thresholds is decoded again at a higher temperature."""
    speech = _long_file(audio_dir, 40.0, seed=3)
    silence = np.zeros(35 * SR, np.float32)
    r = transcriber.transcribe(np.concatenate([speech, silence]), chunking="sequential", temperature=(0.0, 0.2, 0.4), max_new_tokens=448)
    assert "my fellow Americans" in r.text or "Printing" in r.text
    assert all(s.end <= 40.5 for s in r.segments)  # nothing decoded in the 35 s of silence
    # a threshold no window can meet forces the fallback at every window
    forced = transcriber.transcribe(speech, chunking="sequential", temperature=(0.0, 0.5), compression_ratio_threshold=0.1, max_new_tokens=448)
    assert "temperature_fallback" in forced.flags

"""Every variant and the batched long-form path give the reference's tokens."""

from __future__ import annotations

import pytest

from whisper_ort.audio import load_audio
from whisper_ort.optimize import variant_dir

FILES = ["jfk.flac", "lj_LJ001-0001.wav", "libri_198-209-0000.ogg", "sr_english.wav"]


@pytest.fixture(scope="module")
def reference_tokens(audio_dir, transcriber):
    """The tokens of the variant users get (auto), which test_fidelity.py holds equal to transformers'."""
    return {name: transcriber.transcribe(audio_dir / name).tokens for name in FILES}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["default", "fused", "merged", "merged-tied", "mha"])
def test_variant_tokens_equal_the_auto_variant(variant, model_dir, audio_dir, reference_tokens):
    from whisper_ort.pipeline import Transcriber

    if variant != "default" and not variant_dir(model_dir, variant).is_dir():
        pytest.fail(f"{variant_dir(model_dir, variant)} is not built: run `make model` (whisper-ort optimize)")
    t = Transcriber(model_dir, threads=2, variant=variant, prepacking=False, arena=False)
    kinds = {"default": "pair", "fused": "pair", "merged": "merged", "merged-tied": "merged", "mha": "mha"}
    assert t.sessions.kind == kinds[variant]
    assert t.variant == variant
    for name in FILES:
        assert t.transcribe(audio_dir / name).tokens == reference_tokens[name], name


@pytest.mark.slow
def test_batched_windows_give_the_unbatched_text(audio_dir, transcriber):
    samples = load_audio(audio_dir / "silero_test.wav")
    one = transcriber.transcribe(samples)
    batched = transcriber
    batched_t = object.__new__(type(transcriber))
    batched_t.__dict__.update(batched.__dict__)
    batched_t.batch_size = 3
    many = batched_t.transcribe(samples)
    assert many.n_windows == one.n_windows == 3
    assert many.tokens == one.tokens
    assert many.text == one.text


@pytest.mark.slow
def test_mha_decoder_logits_match_the_export(model_dir, audio_dir):
    """Our decoder graph (folded V biases, cross K/V from the encoder) against optimum's
    export, step by step on jfk.flac: same logits to float32 noise, same greedy tokens."""
    import numpy as np

    from whisper_ort.features import log_mel_batch
    from whisper_ort.model import SessionConfig, WhisperSessions

    config = SessionConfig(prepacking=False)
    export = WhisperSessions(model_dir, config)
    ours = WhisperSessions(variant_dir(model_dir, "mha"), config)
    assert ours.kind == "mha"
    mel = log_mel_batch([load_audio(audio_dir / "jfk.flac")])
    prompt = np.array([[50258, 50259, 50359, 50363]], dtype=np.int64)
    a, a_self, a_cross = export.first_step(prompt, export.encode(mel))
    b, b_self, b_cross = ours.first_step(prompt, ours.encode(mel))
    for step in range(12):
        assert a.shape == b.shape == (1, export.vocab_size)
        assert np.abs(a - b).max() < 1e-3, step
        token = np.array([[int(a.argmax())]])
        assert int(b.argmax()) == token[0, 0], step
        a, a_self = export.step(token, a_self, a_cross)
        b, b_self = ours.step(token, b_self, b_cross)
    assert [k.shape for k in a_self] == [k.shape for k in b_self]

"""Every variant and the batched long-form path give the reference's tokens."""

from __future__ import annotations

import pytest

from whisper_ort.audio import load_audio
from whisper_ort.optimize import variant_dir

FILES = ["jfk.flac", "lj_LJ001-0001.wav", "libri_198-209-0000.ogg", "sr_english.wav"]


@pytest.fixture(scope="module")
def reference_tokens(audio_dir, transcriber):
    """The tokens of the variant users get (auto: merged), which test_fidelity.py holds equal to transformers'."""
    return {name: transcriber.transcribe(audio_dir / name).tokens for name in FILES}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["default", "fused", "merged-tied"])
def test_variant_tokens_equal_the_auto_variant(variant, model_dir, audio_dir, reference_tokens):
    from whisper_ort.pipeline import Transcriber

    if variant != "default" and not variant_dir(model_dir, variant).is_dir():
        pytest.fail(f"{variant_dir(model_dir, variant)} is not built: run `make model` (whisper-ort optimize)")
    t = Transcriber(model_dir, threads=2, variant=variant, prepacking=False, arena=False)
    assert t.sessions.merged == variant.startswith("merged")
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

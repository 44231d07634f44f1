"""Decoding options of issue 14 on the real model: language probabilities, suppressed tokens,
best_of sampling, and openai/whisper's segment fields."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_ort.core.audio import load_audio
from whisper_ort.core.decoding import DecodingOptions, SuppressAtBegin, SuppressTokens
from whisper_ort.core.features import log_mel_batch
from whisper_ort.core.sequential import decode_best, rank_score

SR = 16000


def _hf_features(hf_reference, samples):
    processor, _ = hf_reference
    return processor(samples, sampling_rate=SR, return_tensors="pt").input_features


def test_language_probs_match_transformers(transcriber, audio_dir, hf_reference):
    """language=None: the softmax over the language tokens at <|startoftranscript|>, as
    transformers' logits give it; its argmax is transformers' detect_language."""
    import torch

    samples = load_audio(audio_dir / "jfk.flac")
    r = transcriber.transcribe(samples, language=None)
    probs = r.language_probs
    assert r.language == "en" and max(probs, key=probs.get) == "en"
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6) and len(probs) == len(transcriber.tokenizer.ids.lang_to_id)
    assert transcriber.transcribe(samples).language_probs is None  # a given language is not detected

    _, model = hf_reference
    feats = _hf_features(hf_reference, samples)
    tok = transcriber.tokenizer
    codes = sorted(tok.ids.lang_to_id, key=tok.ids.lang_to_id.get)
    ids = [tok.ids.lang_to_id[c] for c in codes]
    with torch.inference_mode():
        logits = model(feats, decoder_input_ids=torch.tensor([[tok.ids.sot]])).logits[0, -1, ids].double()
        detected = model.detect_language(feats)
    ref = torch.softmax(logits, -1).numpy()
    np.testing.assert_allclose([probs[c[2:-2]] for c in codes], ref, atol=1e-4)
    assert tok.id_to_lang[int(detected[0])] == "en"


def test_suppress_tokens_none_lets_the_models_list_through(transcriber, audio_dir, hf_reference):
    """suppress_tokens=(): nothing suppressed. On this clip greedy then opens with a quote
    mark, a token of the model's list; transformers with suppress_tokens=[] gives the same."""
    import torch

    path = audio_dir / "libri_198-209-0000.ogg"
    default = transcriber.transcribe(path)
    free = transcriber.transcribe(path, suppress_tokens=())
    model_list = set(transcriber.sessions.configs["generation_config.json"]["suppress_tokens"])
    assert free.tokens != default.tokens
    assert any(t in model_list for t in free.tokens) and not any(t in model_list for t in default.tokens)
    _, model = hf_reference
    with torch.inference_mode():
        ref = model.generate(_hf_features(hf_reference, load_audio(path)), language="en", task="transcribe", suppress_tokens=[])
    assert free.tokens == [t for t in ref[0].tolist() if t < transcriber.tokenizer.ids.eot]  # no prompt, no end of text
    # and where the list never mattered, the tokens stay the same
    jfk = audio_dir / "jfk.flac"
    assert transcriber.transcribe(jfk, suppress_tokens=()).tokens == transcriber.transcribe(jfk).tokens


def test_suppressing_the_first_word_changes_the_text(transcriber, audio_dir):
    jfk = audio_dir / "jfk.flac"
    first = transcriber.transcribe(jfk).tokens[0]
    other = transcriber.transcribe(jfk, suppress_tokens=(-1, first))
    assert first not in other.tokens and "fellow Americans" in other.text


def test_suppress_options_shape_the_filters(transcriber):
    gen = transcriber.sessions.configs["generation_config.json"]
    kinds = lambda **o: [type(f) for f in transcriber.decoder(DecodingOptions(**o)).filters]  # noqa: E731
    assert kinds() == [SuppressTokens, SuppressAtBegin]
    assert kinds(suppress_tokens=()) == [SuppressAtBegin] and kinds(suppress_blank=False) == [SuppressTokens]
    extra = transcriber.decoder(DecodingOptions(suppress_tokens=(-1, 11))).filters[0].ids
    assert set(extra) == set(gen["suppress_tokens"]) | {11}
    assert list(transcriber.decoder(DecodingOptions(suppress_tokens=(11,))).filters[0].ids) == [11]
    for bad in ((10**6,), (-2,), ("x",)):
        with pytest.raises(ValueError, match="suppress_tokens"):
            transcriber.decoder(DecodingOptions(suppress_tokens=bad))


def test_best_of_keeps_the_best_sample_and_is_deterministic(transcriber, audio_dir):
    """temperature > 0, best_of=3: three samples from the seeded generator, the best by
    openai/whisper's ranking; the same seed gives the same pick."""
    states = transcriber.sessions.encode(log_mel_batch([load_audio(audio_dir / "lj_LJ001-0004.wav")]))
    options = DecodingOptions(temperature=0.8, best_of=3, timestamps=True, max_new_tokens=100)
    decoder = transcriber.decoder(options)

    def pick(seed):
        return decode_best(decoder, states, None, 0.8, np.random.default_rng(seed), options)[0]

    a, b = pick(7), pick(7)
    assert a.tokens == b.tokens and a.sum_logprob == b.sum_logprob
    rng = np.random.default_rng(7)
    samples = [decoder.decode(states, temperature=0.8, rng=rng, with_logprobs=True)[0] for _ in range(3)]
    assert a.tokens == max(samples, key=lambda r: rank_score(r, None)).tokens
    assert len({tuple(s.tokens) for s in samples}) > 1, "at 0.8 the samples should differ"
    # at temperature 0 best_of does not apply: one greedy decode
    greedy = decode_best(decoder, states, None, 0.0, np.random.default_rng(7), options)[0]
    assert greedy.tokens == transcriber.decoder(options).decode(states)[0].tokens


def test_short_files_sample_at_one_temperature(transcriber, audio_dir):
    """Outside the sequential loop: the first temperature, best_of samples, the seed's pick."""
    path = audio_dir / "lj_LJ001-0004.wav"
    a = transcriber.transcribe(path, temperature=0.8, best_of=2, seed=3)
    assert a.tokens == transcriber.transcribe(path, temperature=0.8, best_of=2, seed=3).tokens
    assert a.segments[0].temperature == 0.8 and a.segments[0].avg_logprob < 0  # best_of ranks on log-probabilities
    assert transcriber.transcribe(path, temperature=(0.0, 0.8)).tokens == transcriber.transcribe(path).tokens  # 0 first: greedy


def test_segments_carry_openai_fields(transcriber, audio_dir):
    r = transcriber.transcribe(audio_dir / "jfk.flac", timestamps=True)
    assert [s.id for s in r.segments] == list(range(len(r.segments)))
    assert all(s.compression_ratio > 0 and s.temperature == 0.0 for s in r.segments)
    plain = transcriber.transcribe(audio_dir / "jfk.flac")
    assert plain.segments[0].id == 0 and plain.segments[0].compression_ratio > 0


@pytest.mark.slow
def test_sequential_segments_carry_logprob_and_no_speech(transcriber, audio_dir):
    r = transcriber.transcribe(audio_dir / "silero_test.wav", chunking="sequential", language=None)
    assert r.language == "en" and max(r.language_probs, key=r.language_probs.get) == "en"
    assert [s.id for s in r.segments] == list(range(len(r.segments))) and len(r.segments) > 2
    for s in r.segments:
        assert s.avg_logprob < 0 and 0 <= s.no_speech_prob <= 1 and s.temperature == 0.0 and s.compression_ratio > 0

"""The speculative-decoding study (measure/speculation.py): its simulation counts what a
verifying decoder would do, and the decoder graph does verify several positions at once."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_ort.core.audio import load_audio
from whisper_ort.core.features import log_mel_batch
from whisper_ort.measure.speculation import _step_many, prompt_lookup, simulate, successor_table, token_map_draft


def test_prompt_lookup_takes_what_followed_the_latest_match():
    assert prompt_lookup([5, 6, 7, 8, 1, 5, 6], k=2) == [7, 8]
    assert prompt_lookup([1, 2, 3, 9, 2, 3, 4, 2, 3], k=3) == [4, 2, 3]  # the latest "2 3", not the first
    assert prompt_lookup([1, 2, 3], k=2) == []


def test_simulate_counts_forwards():
    target = [1, 2, 3, 4, 5, 6]
    perfect = simulate(target, [], lambda known, k: target[len(known) : len(known) + k], k=2)
    assert perfect["forwards"] == 2 and perfect["accepted"] == 4  # 2 drafts + 1 per forward
    useless = simulate(target, [], lambda known, k: [0] * k, k=2)
    assert useless["forwards"] == 6 and useless["accepted"] == 0


def test_token_map_drafts_chains_of_successors():
    table = successor_table([[1, 2, 3], [1, 2, 4], [1, 2, 3]])
    assert table == {1: 2, 2: 3}
    assert token_map_draft(table, [7, 1], k=3) == [2, 3]


def test_one_forward_over_two_positions_equals_two_steps(transcriber, audio_dir):
    """The premise of a verify step: the graph with past K/V and T > 1 gives the last
    position the logits that stepping token by token gives (same argmax, close values)."""
    sessions = transcriber.sessions
    states = sessions.encode(log_mel_batch([load_audio(audio_dir / "jfk.flac")]))
    prompt = np.array([transcriber.tokenizer.prompt(transcriber.tokenizer.language_id("en"), "transcribe", False)], dtype=np.int64)
    _, self_kv, cross_kv = sessions.first_step(prompt, states)
    a, b = np.array([[400]], dtype=np.int64), np.array([[370]], dtype=np.int64)  # " And", " so"
    _, kv_a = sessions.step(a, self_kv, cross_kv)
    one_by_one, _ = sessions.step(b, kv_a, cross_kv)
    together, kv_ab = _step_many(sessions, np.concatenate([a, b], axis=1), self_kv, cross_kv)
    full = [x.full() if hasattr(x, "full") else x for x in (one_by_one, together)]
    full[1] = full[1][-1:]  # the mha decoder scores both positions: the last one's row
    assert full[0].shape == full[1].shape
    assert int(np.argmax(full[0])) == int(np.argmax(full[1]))
    np.testing.assert_allclose(full[0], full[1], atol=2e-3)
    assert kv_ab[0].shape[2] == self_kv[0].shape[2] + 2


def test_layer_skip_draft_with_every_layer_is_greedy(transcriber, hf_reference, audio_dir):
    """The layer-skip draft with all 6 layers is the full decoder: its drafts are greedy's
    tokens, so every one is accepted; with 1 layer it is a different predictor (and the
    decoder's layers are put back after drafting)."""
    from whisper_ort.measure.layer_skip import LayerSkipDraft, draft_fraction, encoder_states
    from whisper_ort.measure.speculation import greedy_sequences

    _, model = hf_reference
    path = audio_dir / "lj_LJ001-0002.wav"  # 6 tokens: each guess is a torch forward
    seq = greedy_sequences(transcriber, [path])[path.name]
    states = encoder_states(model, path)
    eot = transcriber.tokenizer.ids.eot
    full = simulate(seq["tokens"], seq["prompt"], LayerSkipDraft(model, states, 6, eot), k=4)
    assert full["accepted"] == full["drafted"] > 0
    shallow = simulate(seq["tokens"], seq["prompt"], LayerSkipDraft(model, states, 1, eot), k=4)
    assert shallow["accepted"] < shallow["drafted"]
    assert len(model.model.decoder.layers) == 6
    assert draft_fraction(1) < draft_fraction(3) < draft_fraction(6) == 1.0


# ---------------------------------------------------------------- the speculative decoder

DEV_SHORT = ["jfk.flac", "libri_198-209-0000.ogg", "libri_3436-172162-0000.ogg", "libri_5703-47212-0000.ogg",
             "lj_LJ001-0001.wav", "lj_LJ001-0002.wav", "lj_LJ001-0003.wav", "lj_LJ001-0004.wav"]


def test_quantized_blocks_round_trip():
    """MatMulNBits' packing: the weight the draft computes with is within half a step of
    the FP32 one, per column and block of 32, in 8 and in 4 bits."""
    from whisper_ort.build.draft_graph import dequantize_blocks, quantize_blocks

    w = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    w[:32, 1] = 0.0  # an all-zero block keeps a usable scale
    for bits in (8, 4):
        packed, scale = quantize_blocks(w, bits)
        assert packed.shape == (5, 2, 32 * bits // 8) and packed.dtype == np.uint8 and scale.shape == (10,)
        back = dequantize_blocks(packed, scale, 64, bits)
        step = np.repeat(scale.reshape(5, 2), 32, axis=1).T
        assert np.all(np.abs(back - w) <= step / 2 + 1e-7)
        assert np.all(back[:32, 1] == 0.0)


def test_draft_graph_computes_with_the_packed_weights(transcriber):
    """ONNX Runtime's MatMulNBits reads the packing as dequantize_blocks does."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from whisper_ort.build.decoder_graph import _Graph
    from whisper_ort.build.draft_graph import _matmul_nbits, dequantize_blocks, quantize_blocks

    w = np.random.default_rng(1).normal(size=(64, 48)).astype(np.float32)
    x = np.random.default_rng(2).normal(size=(3, 64)).astype(np.float32)
    for bits in (8, 4):
        g = _Graph()
        out = _matmul_nbits(g, "x", w, "mm", bits)
        graph = helper.make_graph(g.nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 64])],
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, [3, 48])], g.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)])
        y = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        expected = x @ dequantize_blocks(*quantize_blocks(w, bits), 64, bits)
        np.testing.assert_allclose(y, expected, rtol=0, atol=0.05 * np.abs(expected).max())  # accuracy_level 4 quantizes x too


def test_verify_scores_every_position_as_steps_do(transcriber, audio_dir):
    """MhaSessions.verify over [a, b, c] gives, at each position, the argmax one token step
    at a time gives, and the K/V of all three."""
    sessions = transcriber.sessions
    states = sessions.encode(log_mel_batch([load_audio(audio_dir / "jfk.flac")]))
    prompt = np.array([transcriber.tokenizer.prompt(transcriber.tokenizer.language_id("en"), "transcribe", False)], dtype=np.int64)
    _, self_kv, cross_kv = sessions.first_step(prompt, states)
    ids = [400, 370, 452]  # " And", " so", " my"
    stepped, kv = [], self_kv
    for t in ids:
        logits, kv = sessions.step(np.array([[t]], dtype=np.int64), kv, cross_kv)
        stepped.append(int(logits.argmax()[0]))
    logits, present = sessions.verify(np.array([ids], dtype=np.int64), self_kv, cross_kv)
    assert logits.argmax().tolist() == stepped == [370, 452, 7177]  # " so my fellow"
    assert present[0].shape[2] == self_kv[0].shape[2] + 3
    np.testing.assert_allclose(present[0], kv[0], atol=1e-4)


@pytest.fixture(scope="module")
def dev_windows(transcriber, audio_dir):
    """Each dev short file's window, encoded once: (encoder states, samples) by name. The
    tests below decode it with and without the draft (the encoder is most of a transcribe)."""
    windows = {}
    for name in DEV_SHORT:
        samples = load_audio(audio_dir / name)
        windows[name] = transcriber.sessions.encode(log_mel_batch([samples])), len(samples)
    return windows


def _plain_and_fast(transcriber, window, **options):
    """One window decoded by the plain loop and by the speculative one (as transcribe() calls
    decode: the audio's length lets the draft read only the frames with audio)."""
    from whisper_ort import DecodingOptions

    states, n_samples = window
    (plain,) = transcriber.decoder(DecodingOptions(draft_tokens=0, **options)).decode(states, n_samples=[n_samples])
    (fast,) = transcriber.decoder(DecodingOptions(draft_tokens=4, **options)).decode(states, n_samples=[n_samples])
    assert plain.speculation is None and fast.speculation is not None
    return plain, fast


def test_speculative_decoding_gives_greedy_tokens_on_every_dev_file(transcriber, dev_windows):
    """The tokens of speculative decoding are plain greedy's on every dev short file, with
    fewer FP32 forwards than tokens (the draft is right most of the time)."""
    fast_of = {}
    for name, window in dev_windows.items():
        plain, fast_of[name] = _plain_and_fast(transcriber, window)
        assert fast_of[name].tokens == plain.tokens, name
    result = fast_of["jfk.flac"]
    spec = result.speculation
    assert spec.forwards == result.n_steps
    # each forward gives its kept guesses and its own token (+ end of text, - the prompt
    # step's token); the last forward's own token goes unused when a kept guess ends the text
    assert len(result.tokens) <= spec.accepted + spec.forwards <= len(result.tokens) + 1
    assert spec.forwards < len(result.tokens) / 2


def test_transcribe_speculates_by_default_and_gives_greedy_text(transcriber, audio_dir, monkeypatch):
    """Through transcribe(), as users call it: the draft guesses by default (its steps
    counted), and the text is the plain loop's."""
    from whisper_ort import DecodingOptions

    sessions = transcriber.sessions
    guesses = []
    real_step = sessions.draft_step
    monkeypatch.setattr(sessions, "draft_step", lambda *a, **k: guesses.append(1) or real_step(*a, **k))
    plain = transcriber.transcribe(audio_dir / "jfk.flac", DecodingOptions(draft_tokens=0))
    assert not guesses
    fast = transcriber.transcribe(audio_dir / "jfk.flac")
    assert len(guesses) > 10
    assert fast.tokens == plain.tokens and fast.text == plain.text


def test_speculation_with_timestamps_gives_the_plain_loops_tokens(transcriber, dev_windows):
    """With timestamps each checked position gets the timestamp rules' own mask and choice
    (GreedyDecoder._timestamp_verifier): the tokens of the plain loop on every dev short file
    (so the segments end where the rules put timestamps), with several tokens a forward."""
    fast_of = {}
    for name, window in dev_windows.items():
        plain, fast_of[name] = _plain_and_fast(transcriber, window, timestamps=True)
        assert fast_of[name].tokens == plain.tokens, name
    result = fast_of["jfk.flac"]
    assert sum(t >= transcriber.tokenizer.ids.timestamp_begin for t in result.tokens) >= 2
    assert result.speculation.forwards < len(result.tokens) / 2


def test_speculation_stops_where_greedy_does(transcriber, dev_windows):
    """max_new_tokens and the repetition cut end speculative decoding on the same token."""
    from whisper_ort import DecodingOptions

    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="draft_tokens"):
            transcriber.decoder(DecodingOptions(draft_tokens=bad))
    for changes in ({"max_new_tokens": 5}, {"max_new_tokens": 6}, {"max_repeats": 1}, {"max_repeats": 2}):
        plain, fast = _plain_and_fast(transcriber, dev_windows["jfk.flac"], **changes)
        assert fast.tokens == plain.tokens and fast.flags == plain.flags, changes
        assert ("max_new_tokens" in plain.flags) == ("max_new_tokens" in changes)


def test_self_draft_study_counts_and_checks_tokens(transcriber, audio_dir):
    """measure/speculation.self_draft: the real speculative loop against plain greedy on the
    same windows (it raises if tokens differ); the counts add up."""
    from whisper_ort.measure.speculation import self_draft

    out = self_draft(transcriber, [audio_dir / "jfk.flac", audio_dir / "lj_LJ001-0002.wav"], ks=(4,), rounds=1)
    assert set(out) == {"0", "4"} and out["0"]["ratio_to_plain"] == 1.0
    r = out["4"]
    assert r["accepted"] <= r["drafted"] <= 4 * r["forwards"]
    assert r["tokens"] <= r["forwards"] + r["accepted"] + 2  # + each window's prompt-step token
    assert r["tokens_per_forward"] > 1.5


def test_draft_loaded_ahead_for_greedy_only_and_its_failure_named(model_dir, audio_dir, tmp_path, transcriber):
    """Greedy decoding starts loading the draft before the audio is read (prefetch_draft);
    beam search never loads it. A draft that cannot be loaded fails the greedy call with
    its file named, and leaves beam search working."""
    from folders import mha_copy

    from whisper_ort import Transcriber
    from whisper_ort.core.folder import DECODER_DRAFT, ModelError

    jfk = audio_dir / "jfk.flac"
    fresh = Transcriber(model_dir, threads=2)
    fresh.transcribe(jfk, language="en", beam_size=2)
    assert fresh.sessions._draft is None and fresh.sessions._draft_loading is None
    assert fresh.transcribe(jfk, language="en").text == transcriber.transcribe(jfk, language="en").text
    assert fresh.sessions._draft is not None

    built, broken = mha_copy(model_dir, tmp_path, DECODER_DRAFT)
    (broken / DECODER_DRAFT).write_bytes((built / DECODER_DRAFT).read_bytes()[:1000])
    damaged = Transcriber(tmp_path / model_dir.name, variant="mha", threads=2)
    with pytest.raises(ModelError, match=DECODER_DRAFT):
        damaged.transcribe(jfk, language="en")
    assert damaged.transcribe(jfk, language="en", beam_size=2).text.strip()

"""The speculative-decoding study (measure/speculation.py): its simulation counts what a
verifying decoder would do, and the decoder graph does verify several positions at once."""

from __future__ import annotations

import numpy as np

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
    path = audio_dir / "jfk.flac"
    seq = greedy_sequences(transcriber, [path])[path.name]
    states = encoder_states(model, path)
    eot = transcriber.tokenizer.ids.eot
    full = simulate(seq["tokens"], seq["prompt"], LayerSkipDraft(model, states, 6, eot), k=4)
    assert full["accepted"] == full["drafted"] > 0
    shallow = simulate(seq["tokens"], seq["prompt"], LayerSkipDraft(model, states, 1, eot), k=4)
    assert shallow["accepted"] < shallow["drafted"]
    assert len(model.model.decoder.layers) == 6
    assert draft_fraction(1) < draft_fraction(3) < draft_fraction(6) == 1.0

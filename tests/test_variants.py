"""Every variant and the batched long-form path give the reference's tokens."""

from __future__ import annotations

import pytest

from whisper_ort.core.audio import load_audio
from whisper_ort.core.folder import variant_dir

FILES = ["jfk.flac", "lj_LJ001-0001.wav", "libri_198-209-0000.ogg", "sr_english.wav"]


@pytest.fixture(scope="module")
def reference_tokens(audio_dir, transcriber):
    """The tokens of the variant users get (auto), which test_fidelity.py holds equal to transformers'."""
    return {name: transcriber.transcribe(audio_dir / name).tokens for name in FILES}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["export", "mha"])
def test_variant_tokens_equal_the_auto_variant(variant, model_dir, audio_dir, reference_tokens):
    from whisper_ort.core.decoders import ExportSessions, MhaSessions
    from whisper_ort.core.pipeline import Transcriber

    if not variant_dir(model_dir, variant).is_dir():
        pytest.fail(f"{variant_dir(model_dir, variant)} is not built: run `make model` (whisper-ort optimize)")
    t = Transcriber(model_dir, threads=2, variant=variant, prepacking=False, arena=False)
    assert type(t.sessions) is {"export": ExportSessions, "mha": MhaSessions}[variant]
    assert t.variant == variant
    for name in FILES:
        assert t.transcribe(audio_dir / name).tokens == reference_tokens[name], name


@pytest.mark.slow
def test_batched_windows_give_the_unbatched_text(audio_dir, transcriber):
    samples = load_audio(audio_dir / "silero_test.wav")
    one = transcriber.transcribe(samples)
    many = transcriber.transcribe(samples, batch_size=3)
    assert many.n_windows == one.n_windows == 3
    assert many.tokens == one.tokens
    assert many.text == one.text


@pytest.mark.slow
def test_mha_decoder_logits_match_the_export(model_dir, audio_dir):
    """Our decoder graph (folded V biases, cross K/V from the encoder, bounded logits)
    against optimum's export, step by step on jfk.flac: every export logit inside our
    approx +- bound, the exact logits equal to float32 noise, the same greedy tokens."""
    import numpy as np

    from whisper_ort.core.decoders import ExportSessions, MhaSessions
    from whisper_ort.core.features import log_mel_batch
    from whisper_ort.core.session import SessionConfig

    config = SessionConfig(prepacking=False)
    export = ExportSessions(model_dir, config)
    ours = MhaSessions(variant_dir(model_dir, "mha"), config)
    ours.fetch_bounds = True
    mel = log_mel_batch([load_audio(audio_dir / "jfk.flac")])
    prompt = np.array([[50258, 50259, 50359, 50363]], dtype=np.int64)
    a, a_self, a_cross = export.first_step(prompt, export.encode(mel))
    b, b_self, b_cross = ours.first_step(prompt, ours.encode(mel))
    candidates = []
    for step in range(12):
        assert a.shape == b.shape == (1, export.vocab_size)
        full = b.full()
        assert (np.isneginf(a) == np.isneginf(full)).all(), step
        finite = np.isfinite(a)
        assert np.abs(a[finite] - full[finite]).max() < 1e-3, step
        # the bounded head's promise, against the export's own FP32 projection
        assert ((b.lower <= a) & (a <= b.upper)).all(), step
        np.testing.assert_allclose(b.columns([11, 400, 50257]), ours.exact_logits(b.hidden)[:, [11, 400, 50257]], rtol=0, atol=1e-4)
        token = np.array([[int(a.argmax())]])
        assert int(b.argmax()[0]) == token[0, 0], step
        candidates += b.n_candidates
        a, a_self = export.step(token, a_self, a_cross)
        # a filter's -inf in the mask: the exact argmax moves to the best token left
        mask = np.zeros((1, ours.vocab_size), np.float32)
        mask[0, [int(a.argmax()), 11]] = -np.inf
        b, b_self = ours.step(token, b_self, b_cross, mask=mask)
        masked = a + mask
        assert int(b.argmax()[0]) == int(masked.argmax()), step
        assert (b.upper[mask < 0] == -np.inf).all()
        a = masked
    assert [k.shape for k in a_self] == [k.shape for k in b_self]
    assert max(candidates) < 100  # a bound loose enough to let hundreds through would cost more than it saves


@pytest.mark.slow
def test_bounded_logits_give_the_full_logits_tokens(model_dir, audio_dir, reference_tokens):
    """The mha decoder's exact argmax from bounded logits against every FP32 logit each step."""
    from whisper_ort.core.pipeline import Transcriber

    t = Transcriber(model_dir, threads=2, variant="mha")
    for name in FILES[:2]:
        assert t.transcribe(audio_dir / name, full_logits=True).tokens == reference_tokens[name], name


def test_memory_pattern_is_off_unless_asked():
    """Off by default (it cost 40 MB of peak RSS and bought no speed); --mem-pattern turns it on."""
    from whisper_ort.cli import build_parser
    from whisper_ort.core.session import SessionConfig

    assert SessionConfig().options().enable_mem_pattern is False
    assert SessionConfig(mem_pattern=True).options().enable_mem_pattern is True
    parser = build_parser("transcribe")
    assert parser.parse_args(["transcribe", "x.wav"]).mem_pattern is False
    assert parser.parse_args(["transcribe", "x.wav", "--mem-pattern"]).mem_pattern is True
    assert parser.parse_args(["transcribe", "x.wav", "--no-mem-pattern"]).mem_pattern is False


@pytest.mark.slow
def test_memory_pattern_gives_the_same_tokens(model_dir, audio_dir, reference_tokens):
    from whisper_ort.core.pipeline import Transcriber

    t = Transcriber(model_dir, threads=2, mem_pattern=True)
    for name in FILES:
        assert t.transcribe(audio_dir / name).tokens == reference_tokens[name], name


def test_decoder_and_head_threads_park_at_the_end_of_a_run():
    """spin_stop (the default): the decoder and the full projection spin while they run and
    park their threads when a run ends; the encoder does not spin; --keep-spinning goes back."""
    from whisper_ort.cli import build_parser
    from whisper_ort.core.session import SessionConfig

    def entries(config, role):
        o = config.options(role)
        try:
            stop = o.get_session_config_entry("session.force_spinning_stop")
        except RuntimeError:  # ONNX Runtime's answer for an entry never set
            stop = None
        return o.get_session_config_entry("session.intra_op.allow_spinning"), stop

    assert entries(SessionConfig(), "decoder") == ("1", "1")
    assert entries(SessionConfig(), "head") == ("1", "1")
    assert entries(SessionConfig(), "encoder") == ("0", None)
    assert entries(SessionConfig(spin_stop=False), "decoder") == ("1", None)
    assert entries(SessionConfig(spin_stop=False), "head") == ("0", None)
    assert entries(SessionConfig(spinning=False), "decoder") == ("0", None)
    with pytest.raises(ValueError, match="spinning=False"):  # the global pool would ignore it
        SessionConfig(shared_pool=True, spinning=False)
    assert entries(SessionConfig(), "draft") == entries(SessionConfig(), "decoder")
    # --no-prepacking leaves the 4-bit draft packed: unpacked, MatMulNBits repacks every run
    unpacked = SessionConfig(prepacking=False)
    assert unpacked.options("decoder").get_session_config_entry("session.disable_prepacking") == "1"
    assert unpacked.options("draft").get_session_config_entry("session.disable_prepacking") == "0"
    parser = build_parser("transcribe")
    assert parser.parse_args(["transcribe", "x.wav"]).spin_stop is True
    assert parser.parse_args(["transcribe", "x.wav", "--keep-spinning"]).spin_stop is False


def _aged_folder(model_dir, tmp_path, age):
    """A copy of the mha folder whose decoder graph `age(model)` made older (weights shared)."""
    import onnx
    from folders import mha_copy

    from whisper_ort.core.folder import DECODER_MHA

    built, old = mha_copy(model_dir, tmp_path, DECODER_MHA)
    decoder = onnx.load(str(built / DECODER_MHA), load_external_data=False)
    age(decoder)
    onnx.save(decoder, str(old / DECODER_MHA))  # its weights stay in the copied .data file
    return built, old


def test_a_decoder_with_cross_v_not_transposed_is_refused_and_rebuilt(model_dir, tmp_path):
    """A folder built before the cross V was transposed (decoder metadata without
    cross_v_layout) would read V the wrong way round: optimize rebuilds it, and the
    sessions refuse it with a message that says so, never wrong tokens."""
    from whisper_ort.build.optimize import _is_current_mha
    from whisper_ort.core.decoders import MhaSessions
    from whisper_ort.core.folder import CROSS_LAYOUT, ModelError

    def drop_layout(decoder):
        kept = [p for p in decoder.metadata_props if p.key != CROSS_LAYOUT[0]]
        assert len(kept) == len(decoder.metadata_props) - 1
        del decoder.metadata_props[:]
        decoder.metadata_props.extend(kept)

    built, old = _aged_folder(model_dir, tmp_path, drop_layout)
    assert _is_current_mha(built) and not _is_current_mha(old)
    with pytest.raises(ModelError, match="cross V not transposed"):
        MhaSessions(old)


def test_a_decoder_listing_candidates_by_nonzero_is_refused_and_rebuilt(model_dir, tmp_path):
    """Before the head returned its candidate mask, it listed the candidates with NonZero
    as (2, n) pairs: read as a mask they would be wrong tokens. Rebuilt and refused."""
    from onnx import TensorProto, helper

    from whisper_ort.build.optimize import _is_current_mha
    from whisper_ort.core.decoders import MhaSessions
    from whisper_ort.core.folder import ModelError

    def list_by_nonzero(decoder):
        graph = decoder.graph
        (reaches,) = [n for n in graph.node if n.output[0] == "candidate_mask"]
        reaches.output[0] = "reaches"
        graph.node.append(helper.make_node("NonZero", ["reaches"], ["candidates"], name="head/candidates"))
        graph.output[1].CopyFrom(helper.make_tensor_value_info("candidates", TensorProto.INT64, [2, "candidates"]))

    built, old = _aged_folder(model_dir, tmp_path, list_by_nonzero)
    assert _is_current_mha(built) and not _is_current_mha(old)
    with pytest.raises(ModelError, match="listed by NonZero"):
        MhaSessions(old)

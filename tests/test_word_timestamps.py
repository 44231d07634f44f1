"""Word-level timestamps (core/timing.py) against transformers' ASR pipeline, return_timestamps="word"."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import HF_DIR, REPO

from whisper_ort.core.audio import load_audio
from whisper_ort.core.folder import ALIGNMENT_OUTPUTS, DECODER_MHA, ENCODER, ModelError, variant_dir
from whisper_ort.core.timing import dtw, median_filter

DEV_SHORT = ["jfk.flac", "libri_198-209-0000.ogg", "libri_3436-172162-0000.ogg", "libri_5703-47212-0000.ogg",
             "lj_LJ001-0001.wav", "lj_LJ001-0002.wav", "lj_LJ001-0003.wav", "lj_LJ001-0004.wav"]


def _has_alignment(folder) -> bool:
    import onnx

    path = folder / DECODER_MHA
    return path.is_file() and set(ALIGNMENT_OUTPUTS) <= {o.name for o in onnx.load(str(path), load_external_data=False).graph.output}


def _linked_copy(origin, dest) -> None:
    """dest/ holding links to origin's files: a model folder to build beside without copying 300 MB."""
    dest.mkdir(exist_ok=True)
    for f in origin.iterdir():
        if not (dest / f.name).exists():
            (dest / f.name).symlink_to(f.resolve())


@pytest.fixture(scope="session")
def words_model_dir(model_dir):
    """A model folder whose mha decoder has the alignment output: the repo's once `make model`
    has rebuilt it, else one built beside it from the same export (kept; build_mha skips it
    while it is current)."""
    if _has_alignment(variant_dir(model_dir, "mha")):
        return model_dir
    from whisper_ort.build.optimize import build_mha

    src = REPO / "whisper-base-with-past-words"
    _linked_copy(model_dir, src)
    _linked_copy(HF_DIR, REPO / "whisper-base-with-past-words-hf")
    build_mha(src, log=lambda *_: None)
    return src


@pytest.fixture(scope="session")
def words_transcriber(words_model_dir):
    from whisper_ort import Transcriber

    return Transcriber(words_model_dir, threads=2, variant="mha")


# ---------------------------------------------------------------- DTW, median filter: against plain loops


def naive_dtw(x: np.ndarray):
    """openai/whisper's dtw_cpu, cell by cell."""
    n, m = x.shape
    cost = np.full((n + 1, m + 1), np.inf)
    trace = -np.ones((n + 1, m + 1))
    cost[0, 0] = 0
    for j in range(1, m + 1):
        for i in range(1, n + 1):
            c0, c1, c2 = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            cost[i, j] = x[i - 1, j - 1] + c
            trace[i, j] = t
    i, j = n, m
    trace[0, :] = 2
    trace[:, 0] = 1
    text, time = [], []
    while i > 0 or j > 0:
        text.append(i - 1)
        time.append(j - 1)
        if trace[i, j] == 0:
            i, j = i - 1, j - 1
        elif trace[i, j] == 1:
            i -= 1
        else:
            j -= 1
    return np.array(text[::-1]), np.array(time[::-1])


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (6, 1), (5, 17), (12, 40), (30, 25)])
def test_dtw_equals_the_cell_by_cell_loop(shape):
    rng = np.random.default_rng(sum(shape))
    for x in (rng.normal(size=shape), rng.integers(-2, 3, size=shape).astype(np.float64)):  # integers: many ties
        ours, theirs = dtw(x), naive_dtw(x)
        assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1])


def naive_median_filter(x: np.ndarray, width: int) -> np.ndarray:
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        out[idx] = np.median(padded[idx[:-1]][idx[-1] : idx[-1] + width])
    return out


@pytest.mark.parametrize("shape", [(3, 4, 20), (2, 5, 7), (1, 2, 4), (2, 3, 3)])
def test_median_filter_equals_a_plain_window_median(shape):
    x = np.random.default_rng(len(shape)).normal(size=shape).astype(np.float32)
    assert np.array_equal(median_filter(x, 7), naive_median_filter(x, 7))


def test_median_filter_matches_transformers():
    import torch
    from transformers.models.whisper.generation_whisper import _median_filter

    x = np.random.default_rng(0).normal(size=(2, 8, 11, 60)).astype(np.float32)
    assert np.array_equal(median_filter(x, 7), _median_filter(torch.from_numpy(x), 7).numpy())


def test_median_filter_rejects_an_even_width():
    with pytest.raises(ValueError, match="odd"):
        median_filter(np.zeros((2, 10)), 4)


def test_words_split_as_transformers_does(words_transcriber):
    """Spaces, unicode boundaries, punctuation merged: transformers' _combine_tokens_into_words."""
    from transformers import WhisperTokenizer as HFTokenizer
    from transformers.models.whisper.tokenization_whisper import _combine_tokens_into_words

    from whisper_ort.core.timing import split_words

    tok = words_transcriber.tokenizer
    hf = HFTokenizer.from_pretrained(HF_DIR)
    prepend, append = "\"'“¡¿([{-", "\"'.。,，!！?？:：”)]}、"
    for text in [" And so, my fellow Americans: \"ask not\" (what) your country... can do!", " naïve café — 1,000 €uros?", " don't-stop [it] 'now'."]:
        ids = tok.encode(text)
        words, _, indices = _combine_tokens_into_words(hf, ids, "english", prepend, append)
        assert split_words(tok, ids, "en", prepend, append) == list(zip(words, indices))


# ---------------------------------------------------------------- against the pipeline


@pytest.fixture(scope="module")
def hf_word_pipeline():
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from transformers import pipeline

    torch.set_num_threads(2)
    return pipeline("automatic-speech-recognition", model=str(HF_DIR), device="cpu")


@pytest.mark.slow
def test_words_match_the_transformers_pipeline(audio_dir, words_transcriber, hf_word_pipeline):
    """The 8 dev short files: the same words, and over every word edge (start and end) the
    median |difference| <= 20 ms, p95 <= 100 ms (issue 14's goals)."""
    import torch

    diffs = []
    for name in DEV_SHORT:
        samples = load_audio(audio_dir / name)
        ours = [w for s in words_transcriber.transcribe(samples, word_timestamps=True).segments for w in s.words]
        with torch.inference_mode():
            chunks = hf_word_pipeline(samples.copy(), return_timestamps="word",
                                      generate_kwargs={"language": "en", "task": "transcribe", "num_beams": 1, "do_sample": False})["chunks"]
        assert [w.word.strip() for w in ours] == [c["text"].strip() for c in chunks], name
        for w, c in zip(ours, chunks):
            diffs += [abs(w.start - c["timestamp"][0]), abs(w.end - c["timestamp"][1])]
    diffs = np.array(diffs)
    median, p95 = float(np.median(diffs)), float(np.percentile(diffs, 95))
    print(f"{len(diffs)} word edges: median |diff| {median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {diffs.max() * 1000:.0f} ms")
    assert median <= 0.020
    assert p95 <= 0.100


@pytest.mark.slow
def test_word_probabilities_are_the_text_softmax_of_the_reference(audio_dir, words_transcriber, hf_reference):
    """A word's probability: the mean over its tokens of softmax(logits[:eot]) at the position
    that predicts each, the logits of transformers' model on the same sequence."""
    import torch

    processor, model = hf_reference
    samples = load_audio(audio_dir / "jfk.flac")
    result = words_transcriber.transcribe(samples, word_timestamps=True)
    tok = words_transcriber.tokenizer
    prompt = tok.prompt(tok.language_id("en"), "transcribe", True)
    features = processor.feature_extractor(samples, sampling_rate=16000, return_tensors="pt").input_features
    with torch.inference_mode():
        logits = model(features, decoder_input_ids=torch.tensor([prompt + result.tokens])).logits[0].double()
    probs = torch.softmax(logits[len(prompt) - 1 : -1, : tok.ids.eot], dim=-1)
    text = [k for k, t in enumerate(result.tokens) if t < tok.ids.eot]
    token_prob = {k: float(probs[k, result.tokens[k]]) for k in text}
    words = [w for s in result.segments for w in s.words]
    # jfk: one segment; its words take the text tokens in order
    sizes = [len(tok.encode(w.word)) for w in words]
    assert sum(sizes) == len(text)
    start = 0
    for w, n in zip(words, sizes):
        expected = np.mean([token_prob[k] for k in text[start : start + n]])
        assert abs(w.probability - expected) < 2e-3, w
        start += n


# ---------------------------------------------------------------- long audio, old folders, the export


@pytest.mark.slow
@pytest.mark.parametrize("chunking", ["silence", "strided", "sequential"])
def test_long_audio_words_in_file_time(audio_dir, words_transcriber, chunking):
    """60 s: words carry their window's offset, in order, inside the file, and spell their segment."""
    result = words_transcriber.transcribe(audio_dir / "silero_test.wav", word_timestamps=True, chunking=chunking)
    words = [w for s in result.segments for w in s.words]
    assert result.n_windows >= 2 and len(words) > 100
    assert all(0.0 <= w.start <= w.end <= result.duration_s + 0.5 and 0.0 <= w.probability <= 1.0 for w in words)
    starts = [w.start for w in words]
    assert all(b >= a - 0.5 for a, b in zip(starts, starts[1:]))  # a stitched edge may step back a little
    assert max(starts) > 40.0  # the later windows' offsets were added
    for s in result.segments:
        assert "".join(w.word for w in s.words) == s.text


def test_old_mha_folder_decodes_but_asks_for_a_rebuild(words_model_dir, tmp_path, audio_dir):
    """A folder whose decoder lacks the alignment output still decodes greedy; word
    timestamps name the fix; `whisper-ort optimize` sees it as stale."""
    import onnx

    from whisper_ort import Transcriber
    from whisper_ort.build.optimize import _is_current_mha

    built = variant_dir(words_model_dir, "mha")
    old = tmp_path / "whisper-base-with-past-mha"
    _linked_copy(built, old)
    for name in (DECODER_MHA, ENCODER + ".data", DECODER_MHA + ".data"):
        (old / name).unlink()
    for name in (ENCODER + ".data", DECODER_MHA + ".data"):  # ONNX Runtime refuses weights behind a symlink
        shutil.copyfile(built / name, old / name)
    model = onnx.load(str(built / DECODER_MHA), load_external_data=False)
    kept = [o for o in model.graph.output if o.name not in ALIGNMENT_OUTPUTS]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    onnx.save(model, str(old / DECODER_MHA))  # its weights: the linked .data beside it

    assert _is_current_mha(built) and not _is_current_mha(old)
    t = Transcriber(tmp_path / "whisper-base-with-past", threads=2, variant="mha")
    assert "fellow Americans" in t.transcribe(audio_dir / "jfk.flac").text
    with pytest.raises(ModelError, match="whisper-ort optimize --force"):
        t.transcribe(audio_dir / "jfk.flac", word_timestamps=True)


def test_export_variant_says_words_need_mha(model_dir, audio_dir):
    from whisper_ort import Transcriber

    t = Transcriber(model_dir, threads=2, variant="export")
    with pytest.raises(ModelError, match="mha variant"):
        t.transcribe(audio_dir / "jfk.flac", word_timestamps=True)

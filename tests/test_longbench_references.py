"""longbench's references: ground truth where MANIFEST.csv has it, transformers' text of the
piece alone (cached) where it has not."""

from __future__ import annotations

import json

from whisper_ort.measure import longbench


def test_pieces_without_ground_truth_are_scored_against_transformers(audio_dir, tmp_path, monkeypatch):
    from whisper_ort.measure.wer import manifest_references

    monkeypatch.setattr(longbench, "REFERENCE", tmp_path / "none.json")  # no committed reference: the cache answers
    cache = tmp_path / "piece_references.json"
    cache.write_text(json.dumps({"pyannote_sample.wav": "transformers' words"}))
    truth = manifest_references(audio_dir)
    assert "jfk.flac" in truth and "pyannote_sample.wav" not in truth

    refs, kind = longbench.piece_references(audio_dir, ["jfk.flac", "pyannote_sample.wav", "jfk.flac"], cache, threads=1)
    assert kind == "ground truth + transformers"
    assert refs == {"jfk.flac": truth["jfk.flac"], "pyannote_sample.wav": "transformers' words"}
    assert longbench.piece_references(audio_dir, ["jfk.flac"], cache, threads=1) == ({"jfk.flac": truth["jfk.flac"]}, "ground truth")
    assert longbench.piece_references(audio_dir, ["pyannote_sample.wav"], cache, threads=1)[1] == "transformers"


def test_transformers_long_form_rows_are_offered():
    labels = [label for label, *_ in longbench.settings(8, ("silence",))]
    assert longbench.HF_GENERATE in labels and longbench.HF_PIPELINE in labels
    assert [r[1] for r in longbench.settings(8, ("silence",), only=["transformers"])] == ["hf_generate", "hf_pipeline"]


def test_sequential_walk_comes_greedy_and_with_openai_defaults():
    rows = [r for r in longbench.settings(8, ("sequential",)) if r[1] == "whisper_ort"]
    assert [(batch, chunking) for _, _, batch, chunking in rows] == [(1, "sequential"), (1, longbench.SEQUENTIAL_OPENAI)]
    assert all("sequential" in label for label, *_ in rows)  # `--only sequential` keeps both
    assert longbench.OPENAI_DEFAULTS["condition_on_previous_text"] and longbench.OPENAI_DEFAULTS["temperature"][0] == 0.0

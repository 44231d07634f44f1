"""Transcript formats (core/writers.py) read back with real parsers: srt, webvtt-py, csv, json."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
import srt
import webvtt

from whisper_ort.core.pipeline import Segment, Transcription, Word
from whisper_ort.core.writers import FORMATS, to_json, to_srt, to_tsv, to_vtt, write_transcript, write_transcripts

WORDS = [[(" Ask", 0.0, 0.4, 0.9), (" not", 0.5, 0.8, 0.8), (" what", 0.8, 1.2, 0.95)],
         [(" your", 2.0, 2.3, 0.7), (" country\tcan", 2.3, 3.1, 0.6)]]


def result(with_words: bool) -> Transcription:
    segments = []
    for i, ws in enumerate(WORDS):
        words = [Word(w, a, b, p) for w, a, b, p in ws]
        text = "".join(w for w, *_ in ws)
        segments.append(Segment(ws[0][1], ws[-1][2] + 0.2, text, [100 + i], id=i, avg_logprob=-0.25, compression_ratio=0.9,
                                no_speech_prob=0.01, temperature=0.0, words=words if with_words else None))
    text = "".join(s.text for s in segments)
    return Transcription(text, segments, [100, 101], "en", 4.0, {"t_total": 1.0}, language_probs={"en": 0.9, "de": 0.1})


def test_srt_and_vtt_parse_one_cue_per_segment():
    r = result(with_words=False)
    subs = list(srt.parse(to_srt(r)))
    assert [s.content for s in subs] == ["Ask not what", "your country\tcan"]
    assert subs[0].start == timedelta(0) and subs[1].end == timedelta(seconds=3.3)
    vtt = webvtt.from_string(to_vtt(r))
    assert [c.text for c in vtt] == ["Ask not what", "your country\tcan"]
    assert vtt[1].start_in_seconds == 2 and vtt[1].end == "00:00:03.300"


def test_word_cues_follow_the_words():
    """Segments with words: each cue spans its first word's start to its last word's end."""
    subs = list(srt.parse(to_srt(result(with_words=True))))
    assert [(s.start.total_seconds(), s.end.total_seconds()) for s in subs] == [(0.0, 1.2), (2.0, 3.1)]


def test_highlight_words_underlines_each_word_in_turn():
    r = result(with_words=True)
    subs = list(srt.parse(to_srt(r, highlight_words=True)))
    # one cue per word, plus the gap 0.4-0.5 s between "Ask" and "not" with nothing underlined
    assert [s.content for s in subs[:4]] == ["<u>Ask</u> not what", "Ask not what", "Ask <u>not</u> what", "Ask not <u>what</u>"]
    assert [(s.start.total_seconds(), s.end.total_seconds()) for s in subs[:4]] == [(0.0, 0.4), (0.4, 0.5), (0.5, 0.8), (0.8, 1.2)]
    assert len(subs) == 6 and subs[-1].content == "your <u>country\tcan</u>"
    vtt = webvtt.from_string(to_vtt(r, highlight_words=True))
    assert len(vtt) == 6 and vtt[2].raw_text == "Ask <u>not</u> what" and vtt[2].start == "00:00:00.500"


def test_line_width_and_count_split_the_words():
    """Both limits given: openai/whisper's line breaking over segments (a 3 s pause starts a cue)."""
    subs = list(srt.parse(to_srt(result(with_words=True), max_line_width=8, max_line_count=1)))
    assert all(len(line) <= 8 for s in subs for line in s.content.splitlines() if " " in line)
    assert all("\n" not in s.content for s in subs) and len(subs) >= 3
    two = list(srt.parse(to_srt(result(with_words=True), max_line_width=8, max_line_count=2)))
    assert any(len(s.content.splitlines()) == 2 for s in two) and len(two) < len(subs)


def test_tsv_is_integer_milliseconds():
    rows = list(csv.reader(io.StringIO(to_tsv(result(with_words=False))), delimiter="\t"))
    assert rows[0] == ["start", "end", "text"]
    assert rows[1:] == [["0", "1400", "Ask not what"], ["2000", "3300", "your country can"]]  # a tab in the text becomes a space


def test_json_has_openai_shape():
    data = json.loads(to_json(result(with_words=True)))
    assert data["text"] == "Ask not what your country\tcan" and data["language"] == "en"
    assert data["language_probs"] == {"en": 0.9, "de": 0.1}
    keys = {"id", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob", "words"}
    for i, seg in enumerate(data["segments"]):
        assert set(seg) == keys and seg["id"] == i
        assert all(set(w) == {"word", "start", "end", "probability"} for w in seg["words"])
    assert data["segments"][0]["words"][1] == {"word": " not", "start": 0.5, "end": 0.8, "probability": 0.8}
    plain = json.loads(to_json(result(with_words=False)))
    assert "words" not in plain["segments"][0]  # openai: words only when word timestamps ran


def test_all_writes_every_format(tmp_path):
    paths = write_transcripts(result(with_words=True), tmp_path, "clip.wav", "all")
    assert sorted(p.name for p in paths) == sorted(f"clip.wav.{f}" for f in FORMATS)
    assert {"txt", "vtt", "srt", "tsv", "json"} == set(FORMATS)
    assert list(srt.parse((tmp_path / "clip.wav.srt").read_text()))
    assert webvtt.read(str(tmp_path / "clip.wav.vtt")).captions
    assert not list(tmp_path.glob(".*.tmp"))  # atomic: no temporary file left


def test_unknown_format_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown output format 'docx'"):
        write_transcripts(result(False), tmp_path, "x", "docx")
    with pytest.raises(ValueError, match="'all'"):
        write_transcript(result(False), tmp_path / "x.all", "all")

"""A window that greedy decoding without timestamps ends at a pause is decoded again with
timestamps (Transcriber._redecode_sparse), on long files only.

The file: the dev clips with a reference text, in turn, with no pause, to 5 minutes (what
longbench builds with --sources jfk.flac 'lj_*' --pause-s 0). Its last 17.6 s (from 292.23 s:
the last window of the quietest-frame silence cut this project had before the longest-pause
one) decode to one sentence, 18 words, without timestamps; the speech holds 40. Its
fourth vad window (14.6 s of speech: the JFK clip and the start of LJ001-0001) decodes to the
JFK clip alone, at 1.7 text tokens per second.
"""

from __future__ import annotations

import pytest

from whisper_ort.core.audio import load_audio
from whisper_ort.core.decoding import DecodingOptions
from whisper_ort.core.features import log_mel_batch
from whisper_ort.core.longform import silence_windows, split
from whisper_ort.measure.longbench import build_long_file


@pytest.fixture(scope="module")
def samples(audio_dir, tmp_path_factory):
    path, _, _ = build_long_file(audio_dir, tmp_path_factory.mktemp("sparse") / "long.wav", 5, ["jfk.flac", "lj_LJ001-0001.wav",
                                 "lj_LJ001-0002.wav", "lj_LJ001-0003.wav", "lj_LJ001-0004.wav"], 0.0)
    return load_audio(path)


@pytest.fixture(scope="module")
def windows(samples):
    """[the first silence-cut window (dense), the sparse 17.6 s at the end]"""
    first = silence_windows(samples)[0]
    return [samples[first.start : first.stop], samples[int(292.23 * 16000) :]]


def _text(transcriber, result) -> str:
    return transcriber.tokenizer.decode(result.tokens)


def test_a_sparse_window_of_a_long_file_is_decoded_again(transcriber, windows):
    last, first = windows[-1], windows[0]
    options = DecodingOptions(language="en")
    mel = log_mel_batch([last, first])
    alone = transcriber.decode_windows(mel, options, [len(last), len(first)], [False, False])  # a file of one window: plain greedy
    long = transcriber.decode_windows(mel, options, [len(last), len(first)], [True, True])
    assert len(_text(transcriber, alone[0]).split()) == 18 and "redecoded" not in alone[0].flags
    assert "redecoded" in long[0].flags and "ask what you can do for your country" in _text(transcriber, long[0])
    assert len(_text(transcriber, long[0]).split()) == 40
    assert long[1].tokens == alone[1].tokens and "redecoded" not in long[1].flags  # a dense window is left alone
    assert all(t < transcriber.tokenizer.ids.eot for t in long[0].tokens)  # text tokens only, as the first decode's


def test_timestamps_beam_and_strided_are_left_alone(transcriber, windows):
    last = windows[-1]
    mel = log_mel_batch([last])
    for options in (DecodingOptions(language="en", chunking="strided"), DecodingOptions(language="en", timestamps=True)):
        assert "redecoded" not in transcriber.decode_windows(mel, options, [len(last)], [True])[0].flags


def test_a_vad_window_that_stops_at_its_first_clip_is_decoded_again(transcriber, samples):
    speech = split(samples, chunking="vad", vad=transcriber.speech_spans)[3][1]
    options = DecodingOptions(language="en", chunking="vad")
    mel = log_mel_batch([speech])
    alone = transcriber.decode_windows(mel, options, [len(speech)], [False])[0]
    long = transcriber.decode_windows(mel, options, [len(speech)], [True])[0]
    assert _text(transcriber, alone).strip().endswith("ask what you can do for your country.") and "redecoded" not in alone.flags
    assert "redecoded" in long.flags and "Printing" in _text(transcriber, long)

"""chunking="vad": Silero VAD by ONNX Runtime (core/vad.py), its spans merged into windows of
at most 30 s, batched; times mapped back to the file; the folder's VAD file optional."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_ort.core.audio import load_audio
from whisper_ort.core.longform import Window, file_time, split, vad_windows
from whisper_ort.core.vad import VAD_FILE, VAD_LICENSE, SileroVad, merge_spans

SR = 16000


def test_merge_spans_keeps_order_and_the_limit():
    spans = [(0, 10), (20, 35), (40, 41), (50, 70), (80, 81)]
    groups = merge_spans(spans, 26)
    assert [s for g in groups for s in g] == spans  # every span once, in order
    assert all(sum(b - a for a, b in g) <= 26 for g in groups)
    assert groups == [[(0, 10), (20, 35), (40, 41)], [(50, 70), (80, 81)]]
    assert merge_spans([(0, 100)], 26) == [[(0, 100)]]  # a span over the limit is a window alone
    assert merge_spans([], 26) == []


def test_file_time_goes_through_the_spans():
    w = Window(1 * SR, 9 * SR, 0, 0, ((1 * SR, 3 * SR), (5 * SR, 9 * SR)))  # 2 s, then 4 s of speech
    assert w.n_samples == 6 * SR
    assert file_time(w, 0.5) == 1.5
    assert file_time(w, 2.0) == 5.0  # a start on the boundary: the second span
    assert file_time(w, 2.0, is_end=True) == 3.0  # an end on it: the first
    assert file_time(w, 5.0) == 8.0
    assert file_time(w, 7.0, is_end=True) == 9.0  # past the speech: its end
    plain = Window(2 * SR, 4 * SR, 0, 0)
    assert plain.n_samples == 2 * SR and file_time(plain, 1.25) == 3.25


def test_vad_windows_join_the_spans():
    x = np.arange(40 * SR, dtype=np.float32)
    spans = [(0, 10 * SR), (12 * SR, 25 * SR), (26 * SR, 36 * SR)]
    (w1, p1), (w2, p2) = vad_windows(x, spans)
    assert w1.pieces == tuple(spans[:2]) and len(p1) == 23 * SR
    assert np.array_equal(p1, np.concatenate([x[: 10 * SR], x[12 * SR : 25 * SR]]))
    assert (w2.start, w2.stop) == (26 * SR, 36 * SR) and np.array_equal(p2, x[26 * SR : 36 * SR])
    lazy = vad_windows(x, spans)  # built as read: slices and items give the same windows
    assert [w for w, _ in lazy[0:2]] == [w1, w2] and np.array_equal(lazy[-1][1], p2) and len(lazy) == 2
    with pytest.raises(ValueError, match="vad"):
        split(x, chunking="vad")  # no VAD given: the error says what is needed
    assert len(split(x, chunking="vad", vad=lambda s: [])) == 0  # no speech: no window


def test_speech_spans_are_faster_whispers(audio_dir):
    """The same spans as faster-whisper's get_speech_timestamps with its batched pipeline's options."""
    fw_vad = pytest.importorskip("faster_whisper.vad")
    from whisper_ort.build.vad import packaged_vad

    vad = SileroVad(packaged_vad())
    for name in ("silero_test.wav", "pyannote_dev00.wav", "jfk.flac"):
        x = load_audio(audio_dir / name)
        theirs = fw_vad.get_speech_timestamps(x, fw_vad.VadOptions(max_speech_duration_s=30, min_silence_duration_ms=160))
        ours = vad.speech(x)
        assert ours == [(d["start"], d["end"]) for d in theirs], name
        assert len(ours) > 1 and all(a < b <= c for (a, b), (c, _) in zip(ours, ours[1:]))


def test_install_vad_copies_file_and_license(tmp_path):
    from whisper_ort.build.vad import install_vad, packaged_vad

    source = packaged_vad()
    if source is None:
        pytest.skip("faster-whisper (the peers extra) not installed: no Silero file to copy")
    path = install_vad(tmp_path, log=lambda *_: None)
    assert path == tmp_path / VAD_FILE and path.read_bytes() == source.read_bytes()
    assert "MIT" in (tmp_path / VAD_LICENSE).read_text() and "snakers4/silero-vad" in (tmp_path / VAD_LICENSE).read_text()
    assert install_vad(tmp_path, source=tmp_path / "nowhere.onnx", log=lambda *_: None) == path  # kept once there
    assert install_vad(tmp_path / "empty", source=tmp_path / "nowhere.onnx", log=lambda *_: None) is None


def test_missing_vad_file_is_named(model_dir, tmp_path, audio_dir):
    """A folder built before VAD works as before; chunking="vad" names the file it lacks."""
    from whisper_ort import Transcriber

    folder = tmp_path / model_dir.name
    folder.mkdir()
    for f in model_dir.iterdir():
        if f.name != VAD_FILE:
            (folder / f.name).symlink_to(f.resolve())
    t = Transcriber(folder, threads=2, variant="export")
    jfk = load_audio(audio_dir / "jfk.flac")
    assert "fellow Americans" in t.transcribe(jfk).text
    with pytest.raises(FileNotFoundError, match=VAD_FILE):
        t.transcribe(jfk, chunking="vad")


@pytest.mark.slow
def test_vad_batched_equals_unbatched(audio_dir, vad_transcriber):
    """silero_test.wav (60 s): 3 windows of merged speech; batch 1 and 2 give the same tokens;
    segment times lie in the file's speech spans, in order."""
    x = load_audio(audio_dir / "silero_test.wav")
    one, two = (vad_transcriber.transcribe(x, chunking="vad", batch_size=b) for b in (1, 2))
    assert one.n_windows == two.n_windows == 3
    assert two.tokens == one.tokens and two.text == one.text
    assert len(one.text.split()) > 100
    (many,) = vad_transcriber.transcribe_batch([x], chunking="vad", batch_size=3)
    assert many.tokens == one.tokens
    stamped = vad_transcriber.transcribe(x, chunking="vad", batch_size=2, timestamps=True)
    spans = vad_transcriber.speech_spans(x)
    assert stamped.segments and all(a.start <= b.start for a, b in zip(stamped.segments, stamped.segments[1:]))
    for s in stamped.segments:
        assert any(a / SR - 0.01 <= s.start <= b / SR + 0.01 for a, b in spans), s
    assert stamped.segments[-1].end > 50.0  # the last window's times are the file's, not the window's


def test_short_file_vad_matches_default(audio_dir, vad_transcriber, transcriber):
    """jfk.flac (11 s, 5 speech spans): VAD runs on short files too; the tokens are the
    default path's (measured the same on all 8 dev short files)."""
    x = load_audio(audio_dir / "jfk.flac")
    assert len(vad_transcriber.speech_spans(x)) > 1
    assert vad_transcriber.transcribe(x, chunking="vad").tokens == transcriber.transcribe(x).tokens

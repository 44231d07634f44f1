"""measure/long_memory.py's recording: the clips with a reference, in turn, as a 44.1 kHz stereo FLAC."""

from __future__ import annotations

import soundfile as sf

from whisper_ort.measure.long_memory import OUT_SR, build_recording
from whisper_ort.measure.wer import manifest_references


def test_recording_holds_whole_clips_and_their_references_in_turn(audio_dir, tmp_path):
    refs = manifest_references(audio_dir)
    path, reference, seconds = build_recording(audio_dir, tmp_path / "long.flac", hours=60 / 3600)  # at least a minute
    info = sf.info(path)
    assert info.samplerate == OUT_SR and info.channels == 2 and info.format == "FLAC"
    assert info.frames / OUT_SR == seconds and 60 <= seconds < 60 + 12  # whole clips only: past the target by less than one
    names = sorted(refs)
    words = reference.split()
    expected = []
    while len(" ".join(expected).split()) < len(words):  # the references of the clips in turn, as many as written
        expected.append(refs[names[len(expected) % len(names)]])
    assert reference == " ".join(expected) and len(expected) > len(names)

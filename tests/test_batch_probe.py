"""measure/batch_probe.py: every way of running a batch is timed, on real files and sessions."""

from __future__ import annotations

import pytest

from whisper_ort.measure.batch_probe import probe


def test_the_probe_times_each_way_of_running_two_windows(audio_dir, model_dir):
    result = probe(str(audio_dir), "jfk.flac,lj_LJ001-0002.wav", threads=2, rounds=1, limit=2, warmup=False)
    assert result["files"] == ["jfk.flac", "lj_LJ001-0002.wav"]
    assert set(result["median_s"]) == {"one at a time", "one batch", "encoder, batches of 1", "encoder, one batch", "decoder, rows together"}
    assert all(s > 0 for s in result["median_s"].values())


def test_no_matching_file_names_the_folder_and_the_pattern(audio_dir):
    with pytest.raises(SystemExit, match="no audio file matches 'nothing-\\*'"):
        probe(str(audio_dir), "nothing-*", threads=2, rounds=1, limit=2)

"""`bench --engine ray` on a local Ray cluster this module starts: the records of the
single-process run, bad files as error records, an actor killed mid-run, --resume."""

from __future__ import annotations

import json
import shutil

import pytest
from bad_audio import make_bad_corpus

pytest.importorskip("ray")

from whisper_ort.cli import main  # noqa: E402
from whisper_ort.core.options import ModelOptions  # noqa: E402
from whisper_ort.measure.bench import run_bench  # noqa: E402
from whisper_ort.measure.ray_engine import FAULT_ENV, JOURNAL, connect, run_ray_bench  # noqa: E402

GOOD = ("lj_LJ001-0002.wav", "sr_english.wav", "hotwords.mp3")  # short clips: 1.9, 2.7, 4.0 s
BAD = ("random_bytes.wav", "header_only.wav")  # errors
ODD = ("truncated_half.flac",)  # decodes (half of it): a record like any other


@pytest.fixture(scope="module")
def cluster():
    import ray

    assert connect(num_cpus=2, object_store_memory=200 * 1024**2), "a Ray cluster was already running in the test process"
    yield ray.cluster_resources()
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, audio_dir):
    d = tmp_path_factory.mktemp("ray_audio")
    for name in GOOD:
        shutil.copy(audio_dir / name, d / name)
    bad = tmp_path_factory.mktemp("bad")
    expected = make_bad_corpus(bad)
    for name in BAD + ODD:
        shutil.copy(bad / name, d / name)
        assert expected[name] == ("error" if name in BAD else "ok")
    return d


@pytest.fixture(scope="module")
def model(model_dir):
    return ModelOptions(folder=model_dir).with_overrides(threads=2)


@pytest.fixture(scope="module")
def local(corpus, model, tmp_path_factory):
    """The single-process run's records, by (file, repeat)."""
    records, _ = run_bench(corpus, model, output_dir=tmp_path_factory.mktemp("local"), warmup=0, progress=False)
    return {(r.file, r.repeat): r for r in records}


def _keys(records):
    return [(r["file"], r["repeat"]) for r in records]


def test_cli_ray_run_writes_what_the_local_run_writes(cluster, corpus, local, model_dir, tmp_path):
    assert cluster["CPU"] == 2
    out = tmp_path / "out"
    rc = main(["bench", "--engine", "ray", "--actors", "1", "--threads", "2", "--audio-dir", str(corpus), "--onnx-dir", str(model_dir),
               "--output-dir", str(out), "--warmup", "0", "--write-txt", "--no-progress"])
    assert rc == 1, "two bad files: exit code 1, as the local run"
    records = json.loads((out / "inference_per_file.json").read_text())
    assert _keys(records) == list(local), "every file once, in the local run's order"
    for r in records:
        want = local[(r["file"], r["repeat"])]
        assert set(r) == set(want.to_dict()), "the record schema of the local run"
        assert r["status"] == want.status
        if r["file"] in BAD:
            assert r["status"] == "error" and r["file"] in r["error"] and "\n" not in r["error"]
            continue
        assert r["text"] == want.text and r["n_tokens"] == want.n_tokens and r["duration_s"] == want.duration_s
        # decoded in a task of its own, its time put in the record and in t_total
        assert 0 < r["t_load_audio"] < r["t_total"] and r["rtf"] == pytest.approx(r["t_total"] / r["duration_s"])
        assert (out / f"{r['file']}.transcript.txt").read_text().strip() == want.text
    summary = json.loads((out / "inference_summary.json").read_text())
    assert summary["n_failed"] == len(BAD) and sorted(summary["failed_files"]) == sorted(BAD)
    engine = summary["engine"]
    assert engine["name"] == "ray" and engine["actors"] == 1 and engine["duplicates"] == 0 and engine["lost_to_errors"] == 0
    assert sum(engine["files_per_node"].values()) == len(records) - len(BAD) and engine["steady_audio_s_per_s"] > 0
    assert (out / "inference_per_file.csv").read_text().count("\n") == len(records) + 1
    assert len((out / JOURNAL).read_text().splitlines()) == len(records)


def test_killed_actor_is_retried_and_resume_skips_what_is_done(cluster, corpus, local, model, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first, _ = run_ray_bench(corpus, model, output_dir=out, files="lj_*,sr_*", warmup=0, actors=1, progress=False)
    assert [(r.file, r.status) for r in first] == [("lj_LJ001-0002.wav", "ok"), ("sr_english.wav", "ok")]
    done = {r.file: r.t_total for r in first}

    marker = tmp_path / "killed"
    monkeypatch.setenv(FAULT_ENV, f"{marker}:hotwords.mp3")  # the actor that starts this file dies (SIGKILL), once
    records, summary = run_ray_bench(corpus, model, output_dir=out, warmup=0, actors=1, resume=True, progress=False)
    assert marker.is_file(), "the fault was not injected"
    keys = [(r.file, r.repeat) for r in records]
    assert len(keys) == len(set(keys)), "a record twice"
    assert set(keys) == set(local), "a record lost"
    for r in records:
        assert r.status == local[(r.file, r.repeat)].status
        assert r.text == local[(r.file, r.repeat)].text
    hot = next(r for r in records if r.file == "hotwords.mp3")
    assert hot.status == "ok" and hot.text, "the killed actor's file was retried on a new actor"
    assert {r.file: r.t_total for r in records if r.file in done} == done, "resume redid finished records"
    assert summary["engine"]["duplicates"] == 0 and summary["engine"]["lost_to_errors"] == 0
    journal = [json.loads(line) for line in (out / JOURNAL).read_text().splitlines()]
    assert sorted(_keys(journal)) == sorted(keys)


def test_compare_sweep_runs_each_comparison_as_a_task_on_a_node(cluster, corpus, local, model_dir, tmp_path):
    import ray

    out = tmp_path / "sweep"
    rc = main(["compare", "--engine", "ray", "--sut", "whisper_ort", "--cores-list", "1 2", "--audio-dir", str(corpus), "--files", "lj_*",
               "--onnx-dir", str(model_dir), "--output-dir", str(out), "--repeats", "1", "--warmup", "0", "--no-progress"])
    assert rc == 0
    node = ray.get_runtime_context().get_node_id()
    for cores in (1, 2):
        folder = out / f"container_{cores}c" / "whisper_ort"
        records = json.loads((folder / "records.json").read_text())
        assert [(r["implementation"], r["file"], r["status"]) for r in records] == [("whisper_ort", "lj_LJ001-0002.wav", "ok")]
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["engine"]["name"] == "ray" and summary["engine"]["node_id"] == node
        assert summary["limits"]["n_cpus"] == cores and summary["implementations"]["whisper_ort"]["status"] == "ok"
        assert "whisper_ort" in (folder / "summary_table.md").read_text() and (folder / "logs" / "whisper_ort.log").is_file()
    # the same worker as the local compare's, on the node Ray chose: the local run's text at the same threads
    assert records[0]["text"] == local[("lj_LJ001-0002.wav", 0)].text


def test_a_file_that_kills_every_actor_becomes_an_error_record(cluster, corpus, model, tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, ":sr_english.wav")  # no marker: its actor dies every time it starts it
    records, summary = run_ray_bench(corpus, model, output_dir=tmp_path, files="lj_*,sr_*", warmup=0, actors=1, task_retries=1, progress=False)
    got = {r.file: r for r in records}
    assert sorted(got) == ["lj_LJ001-0002.wav", "sr_english.wav"] and len(records) == 2
    assert got["lj_LJ001-0002.wav"].status == "ok"
    lost = got["sr_english.wav"]
    assert lost.status == "error" and lost.error.startswith("sr_english.wav: transcription failed 2 time(s)")
    assert summary["n_failed"] == 1 and summary["engine"]["lost_to_errors"] == 1

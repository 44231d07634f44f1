"""`compare` with two implementations on one file writes the records, the summary and the table; WER helpers."""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import pytest

from whisper_ort.measure import compare, wer
from whisper_ort.measure.peers import available
from whisper_ort.measure.peers.limits import MemoryCap, parse_cpus

JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def _implementations() -> list[str]:
    if available("whisper_ort"):
        return ["whisper_ort", "faster_whisper"]
    return ["faster_whisper", "hf_generate"]


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory, model_dir, audio_dir):
    os.environ["HF_HUB_OFFLINE"] = "1"
    names = _implementations()
    missing = [n for n in names if not available(n)]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    out = tmp_path_factory.mktemp("compare")
    argv = ["--implementations", ",".join(names), "--audio-dir", str(audio_dir), "--files", "jfk.flac", "--onnx-dir", str(model_dir)]
    argv += ["--threads", "2", "--repeats", "1", "--warmup", "0", "--cold-starts", "2", "--output-dir", str(out), "--no-progress"]
    status = compare.main(argv)
    return names, out, status


@pytest.mark.peers
def test_compare_writes_the_table(compare_run):
    names, out, status = compare_run
    assert status == 0
    table = (out / "summary_table.md").read_text()
    assert "| implementation | p95 time (s) | p50 (s) | mean RTF | cold start (s) | peak RSS (MB) | WER vs manifest (%) |" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| implementation")]
    assert [r.split("|")[1].strip() for r in rows] == names
    with open(out / "summary_table.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["implementation"] for r in csv_rows] == names
    assert all(float(r["p95_time_s"]) > 0 and float(r["cold_start_s"]) > 0 and float(r["peak_rss_mb"]) > 0 for r in csv_rows)
    assert all(float(r["wer_vs_manifest_pct"]) == 0.0 for r in csv_rows)


@pytest.mark.peers
def test_compare_writes_records_and_summary(compare_run):
    names, out, _ = compare_run
    records = json.loads((out / "records.json").read_text())
    assert sorted(r["implementation"] for r in records) == sorted(names)
    assert all(r["status"] == "ok" and r["text"] == JFK and r["file"] == "jfk.flac" for r in records)
    assert (out / "records.csv").read_text().count("\n") == len(records) + 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["implementations_order"] == names
    assert summary["environment"]["packages"]["onnxruntime"]
    for name in names:
        entry = summary["implementations"][name]
        assert entry["cold_start_s"] >= entry["load_s"] > 0
        assert len(entry["cold_starts_s"]) == 2 and entry["cold_starts_s"][0] == entry["cold_start_first_s"]
        assert min(entry["cold_starts_s"]) <= entry["cold_start_s"] <= max(entry["cold_starts_s"])
        assert entry["peak_rss_mb"] >= entry["rss_after_load_mb"] > 0
        assert entry["t_total_s"]["p50"] > 0
    if "whisper_ort" in names:  # alone in its worker process: the CLI's one thread pool
        assert summary["implementations"]["whisper_ort"]["info"]["settings"]["session"]["process_pool"] == [2, 1]
    assert summary["implementations"][summary["baseline"]]["p50_ratio_to_baseline"] == pytest.approx(1.0)
    assert len(json.loads((out / "cold_records.json").read_text())) == len(names)
    assert "the median of 2 spawns" in (out / "summary_table.md").read_text()


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    argv = []
    for key, value in kw.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return parser.parse_args(argv)


def test_container_plans_name_their_folders(audio_dir):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    cpus = sorted(os.sched_getaffinity(0))[:2]
    args = _args(audio_dir=audio_dir, cores_list="1 2", memory_gb=4, sut="faster_whisper", cpuset=",".join(map(str, cpus)))
    plans = compare.plans(args)
    assert [p.out_dir for p in plans] == [Path("results/benchmarks/container_1c4g/faster_whisper"), Path("results/benchmarks/container_2c4g/faster_whisper")]
    assert [p.cpus for p in plans] == [cpus[:1], cpus]
    assert [p.threads for p in plans] == [1, 2]
    assert all(p.implementations == ["faster_whisper"] and p.memory_gb == 4 for p in plans)
    plain = compare.plans(_args(audio_dir=audio_dir))
    assert plain[0].out_dir == Path(compare.DEFAULT_OUTPUT_DIR) and plain[0].threads == 2 and plain[0].cpus is None
    assert plain[0].implementations == compare.DEFAULT_IMPLEMENTATIONS.split(",")
    assert "MANIFEST.csv" not in {p.name for p in plain[0].files} and "README.md" not in {p.name for p in plain[0].files}


def test_parse_cpus():
    assert parse_cpus("0,1") == [0, 1]
    assert parse_cpus("0-2,5") == [0, 1, 2, 5]
    assert parse_cpus("1 2") == [1, 2]
    assert parse_cpus(None) is None


def test_memory_cap_says_which_mechanism():
    cap = MemoryCap(2.0, "test")
    try:
        assert cap.mechanism in ("cgroup_v2", "rlimit_as")
        assert "--memory-bytes" in cap.worker_args() and cap.describe()["memory_bytes"] == 2 << 30
    finally:
        cap.cleanup()
    assert MemoryCap(None, "none").worker_args() == []


def test_wer_normalizes_both_sides():
    assert wer.wer("And so, my fellow Americans!", "and so my fellow americans") == 0.0
    assert wer.wer("the cat sat down", "the cat down") == pytest.approx(0.25)
    assert wer.wer("hello world", "hello world", normalize=False) == 0.0


def test_manifest_references(audio_dir):
    refs = wer.manifest_references(audio_dir)
    assert refs["jfk.flac"] == JFK
    assert "hotwords.mp3" not in refs  # no reference_text


def test_longest_deletion_run_counts_consecutive_words():
    ref = "ask not what your country can do for"
    assert wer.measures(ref, "ask not x for")["longest_deletion_run"] == 4
    assert wer.measures(ref, "ask what country do for")["longest_deletion_run"] == 1
    assert wer.measures("ask not what", "")["longest_deletion_run"] == 3
    assert wer.measures(ref, ref)["longest_deletion_run"] == 0


def test_wer_table_is_corpus_wer():
    refs = {"a.wav": "the cat sat down", "b.wav": "red fox"}
    records = [
        {"file": "a.wav", "implementation": "x", "repeat": 0, "status": "ok", "text": "the cat sat down"},
        {"file": "b.wav", "implementation": "x", "repeat": 0, "status": "ok", "text": "red"},
        {"file": "b.wav", "implementation": "x", "repeat": 1, "status": "ok", "text": "nothing like it"},
        {"file": "a.wav", "implementation": "y", "repeat": 0, "status": "error", "text": ""},
    ]
    table = wer.wer_table(records, refs)["implementations"]
    assert table["x"]["overall_wer"] == pytest.approx(1 / 6)  # one deletion over six words, repeat 0 scored
    assert table["x"]["per_file"]["b.wav"]["wer"] == pytest.approx(0.5)
    assert table["y"]["overall_wer"] is None and table["y"]["missing"] == ["a.wav"]

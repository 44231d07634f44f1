"""RESULTS.md and the tables behind it, built from small synthetic records: deterministic and complete."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from whisper_ort.measure import hardware
from whisper_ort.measure.records import Record, summarize, write_json, write_records
from whisper_ort.study import load, names, paths, plots, results_md, tables

FILES = {"a.wav": 2.0, "b.wav": 5.0, "c.wav": 10.0}
TEXTS = {"a.wav": "Hello there.", "b.wav": "The quick brown fox.", "c.wav": "Ask not what your country can do for you."}
ENV = {
    "cpu_model": "Test CPU 9000",
    "cpu_count": 2,
    "cpu_affinity": [0, 1],
    "platform": "Linux-test",
    "python": "3.11.7",
    "packages": {"onnxruntime": "1.32.0", "numpy": "2.4.6"},
    "ort_providers": ["CPUExecutionProvider"],
    "date_utc": "2025-11-25T10:00:00Z",
    "command": "whisper-ort bench --threads 2",
}


def _record(impl: str, name: str, repeat: int, threads: int = 2, scale: float = 1.0, text: str | None = None) -> Record:
    dur = FILES[name]
    jitter = 1.0 + 0.05 * repeat
    r = Record(
        file=name, duration_s=dur, implementation=impl, threads=threads, repeat=repeat, text=text if text is not None else TEXTS[name],
        n_tokens=int(4 * dur), n_windows=1, t_load_audio=0.01, t_features=0.02 * scale, t_encoder=0.5 * scale * jitter,
        t_decoder_first=0.1 * scale, t_decoder_loop=0.012 * 4 * dur * scale, t_detokenize=0.001,
    )
    r.t_total = sum(getattr(r, s) for s in names.STAGES) + 0.005
    return r.finish()


def _floors(threads: int) -> dict:
    gemm = {"encoder_ffn1_1500x512x2048": {"m": 1500, "k": 512, "n": 2048, "best_s": 0.02, "gflops": 150.0}, "square_2048": {"m": 2048, "k": 2048, "n": 2048, "best_s": 0.1, "gflops": 175.0}}
    bw = {"size_bytes": 1, "numpy_sum": {"best_s": 1, "gbs": 20.0}, "ort_reduce_sum": {"best_s": 1, "gbs": 30.0}, "ort_gemv": {"best_s": 1, "gbs": 25.0, "k": 512, "n": 1}}
    f = hardware.derive(threads, gemm, gemm, bw)
    f.update({"cpu_model": "Test CPU 9000", "cpu_count": 2, "date_utc": "2025-11-25T09:00:00Z", "loadavg": [0.5, 0.6], "measure_s": 10.0, "packages": {}})
    return f


@pytest.fixture()
def study(tmp_path) -> dict:
    """results/ with every kind of record the study writes, and an audio/ with MANIFEST.csv."""
    results = tmp_path / "results"
    bench = results / "benchmarks"
    latency = [_record("whisper_ort", f, r) for r in range(3) for f in FILES]
    latency.append(Record(file="broken.wav", status="error", error="broken.wav: cannot decode"))
    write_records(bench / "latency" / "whisper_ort", latency)
    write_json(bench / "latency" / "whisper_ort" / "inference_summary.json", summarize(latency, ENV, repeats=3, warmup=1))
    for threads, scale in ((1, 1.8), (2, 1.0), (4, 1.1)):
        recs = [_record("whisper_ort", f, r, threads=threads, scale=scale) for r in range(2) for f in FILES]
        write_records(bench / "threads" / str(threads), recs)
        write_json(bench / "threads" / str(threads) / "inference_summary.json", summarize(recs, dict(ENV, command=f"whisper-ort bench --threads {threads}"), repeats=2, warmup=1))
    write_json(bench / "hardware.json", {"by_threads": {"2": _floors(2)}})
    compare = []
    for r in range(2):
        for f in FILES:
            compare.append(_record("whisper_ort", f, r))
            compare.append(_record("faster_whisper", f, r, scale=2.0, text=TEXTS[f].replace("quick", "quack")))
            compare.append(_record("hf_generate", f, r, scale=4.0))
    write_records(bench / "compare", compare, stem="records")
    write_json(bench / "compare" / "summary.json", {
        "created": "2025-11-25T11:30:00+00:00", "command": ["whisper-ort", "compare", "--threads", "2"], "repeats": 2, "warmup": 1,
        "environment": {"cpu_model": "Test CPU 9000", "cpu_count": 2},
        "implementations": {"whisper_ort": {"cold_start_s": 4.5, "peak_rss_mb": 1100.0}, "faster_whisper": {"cold_start_s": 1.7, "peak_rss_mb": 530.0}, "hf_generate": {"cold_start_s": 9.0, "peak_rss_mb": 1000.0}},
    })
    reference = [_record("hf_generate", f, 0) for f in FILES]
    write_json(results / "reference" / "inference_per_file.json", [r.to_dict() for r in reference])
    audio = tmp_path / "audio"
    audio.mkdir()
    with open(audio / "MANIFEST.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "duration_s", "reference_text"])
        w.writerow(["a.wav", 2.0, "hello there"])
        w.writerow(["b.wav", 5.0, "the quick brown fox"])
        w.writerow(["c.wav", 10.0, ""])
    return {"results": results, "audio": audio, "output": tmp_path / "RESULTS.md"}


def _build(study, **kw) -> str:
    return results_md.build_results_md(study["results"], study["output"], audio_dir=study["audio"], **kw)


def test_results_md_is_deterministic(study):
    first = _build(study)
    svgs = {p.name: p.read_bytes() for p in sorted((study["results"] / "plots").glob("*.svg"))}
    second = _build(study)
    assert first == second == study["output"].read_text()
    assert {p.name: p.read_bytes() for p in sorted((study["results"] / "plots").glob("*.svg"))} == svgs
    assert len(svgs) >= 10
    for name in svgs:
        assert (study["results"] / "plots" / name).with_suffix(".png").is_file()
        assert f"plots/{name}" in first  # every plot is referenced, relative to RESULTS.md


def test_results_md_has_every_section(study):
    text = _build(study, plots=False)
    for heading in ("## Machine", "## Latency per file", "## Thread scaling", "## Stage breakdown and floors", "## Peers", "## Fidelity"):
        assert heading in text
    assert "Test CPU 9000" in text and "2 logical CPU(s)" in text and "`onnxruntime` | 1.32.0" in text
    assert "2025-11-25T11:30:00Z" in text  # the latest date in the records, not today
    assert "whisper-ort bench --threads 2" in text and "whisper-ort compare --threads 2" in text
    for name in FILES:
        assert f"`{name}`" in text
    assert "broken.wav: cannot decode" in text
    assert "| threads | log-mel | encoder | decoder first step | decoder loop | total |" in text
    assert "floor / measured" in text and "compute: 87.4 GFLOP at 175.0 GFLOP/s" in text
    assert "memory: 232 MB read at 30.0 GB/s" in text
    assert "| faster_whisper | 2 | 3 | 0 | 1.761 | 1.98x |" in text and "| 2.930 (3.94x) |" in text
    assert "\n\n\n" not in text
    assert "| 1.70 | 530 |" in text  # cold start and peak RSS from compare's summary
    assert "whisper_ort vs hf_generate | 3 | 3/3 | 0 |" in text
    assert "faster_whisper vs hf_generate | 3 | 2/3 | 1 |" in text
    assert "![" not in text  # plots=False: no images referenced


def test_missing_records_give_notes_not_errors(tmp_path):
    text = results_md.build_results_md(tmp_path / "results", tmp_path / "R.md", audio_dir=tmp_path / "audio")
    assert "## Latency per file" in text and "## Peers" in text
    assert "run `make study` first" in text
    assert "run `whisper-ort compare` first" in text
    assert (tmp_path / "R.md").read_text() == text


def test_per_file_and_overall(study):
    df = load.load_records(study["results"] / "benchmarks" / "latency" / "whisper_ort" / "inference_per_file.json")
    pf = tables.per_file(df)
    assert list(pf["file"]) == sorted(FILES)
    a = pf.set_index("file").loc["a.wav"]
    assert a["n"] == 3
    assert a["t_encoder_p50"] == pytest.approx(0.5 * 1.05)
    assert a["t_total_p95"] > a["t_total_p50"] > a["t_total_min"]
    assert a["t_other_p50"] == pytest.approx(0.005, abs=1e-3)
    overall = tables.latency_overall(df)
    assert overall["n_files"] == 3 and overall["n_records"] == 9
    assert overall["audio_s"] == pytest.approx(17.0)


def test_thread_scaling_speedup_and_efficiency(study):
    df, summaries = load.load_thread_runs(paths.StudyPaths.from_results(study["results"]))
    assert sorted(summaries) == [1, 2, 4]
    s = tables.thread_scaling(df).set_index(["stage", "threads"])
    assert s.loc[("t_encoder", 1), "speedup"] == pytest.approx(1.0)
    assert s.loc[("t_encoder", 2), "speedup"] == pytest.approx(1.8)
    assert s.loc[("t_encoder", 2), "efficiency"] == pytest.approx(0.9)
    assert s.loc[("t_encoder", 4), "efficiency"] == pytest.approx(1.8 / 1.1 / 4)


def test_stage_floors_fractions(study):
    df = load.load_records(study["results"] / "benchmarks" / "latency" / "whisper_ort" / "inference_per_file.json")
    floors = load.load_floors(paths.StudyPaths.from_results(study["results"]))[2]
    t = tables.stage_floors(df, floors).set_index("stage")
    enc = t.loc["encoder"]
    assert enc["measured_ms"] == pytest.approx(525.0)
    assert enc["floor_ms"] == pytest.approx(1e3 * 87.36768 / 175.0)
    assert enc["of_floor"] == pytest.approx(enc["floor_ms"] / enc["measured_ms"])
    assert t.loc["decoder loop step", "measured_ms"] == pytest.approx(12.0)
    both = t.loc["encoder + first step"]
    assert both["floor_ms"] == pytest.approx(enc["floor_ms"] + t.loc["decoder first step", "floor_ms"])
    assert both["measured_ms"] >= enc["measured_ms"]
    assert tables.stage_floors(df, None).empty


def test_floors_a_run_beats_are_called_low(study):
    """A GEMM peak measured in a busy minute gives floors the pipeline beats: the report says
    so instead of showing ratios under 1x as if a goal were met."""
    df = load.load_records(study["results"] / "benchmarks" / "latency" / "whisper_ort" / "inference_per_file.json")
    good = load.load_floors(paths.StudyPaths.from_results(study["results"]))[2]
    assert tables.beaten_floors(tables.stage_floors(df, good)) == []
    slow_memory = dict(good, bandwidth_gbs=5.0, decoder_step_floor_s=good["decoder_step_bytes"]["total"] / 5e9)  # 46 ms a token
    assert tables.beaten_floors(tables.stage_floors(df, slow_memory)) == []  # tokens may beat the one-token floor (speculation)
    assert "measured low" not in _build(study, plots=False)
    gemm = {"square_2048": {"m": 2048, "k": 2048, "n": 2048, "best_s": 0.2, "gflops": 100.0}}  # encoder floor 874 ms > its 525
    low = dict(good, **hardware.derive(2, gemm, gemm, good["bandwidth"]))  # the run's notes kept, the peaks and floors replaced
    assert tables.beaten_floors(tables.stage_floors(df, low)) == ["encoder", "encoder + first step"]
    write_json(study["results"] / "benchmarks" / "hardware.json", {"by_threads": {"2": low}})
    assert "**These floors were measured low**: `encoder`, `encoder + first step`" in _build(study, plots=False)


def test_peers_ratios(study):
    df, summary = load.load_compare(paths.StudyPaths.from_results(study["results"]))
    files_t, impls_t = tables.peers_table(df, summary)
    impls = impls_t.set_index("implementation")
    assert list(impls_t["implementation"]) == ["whisper_ort", "faster_whisper", "hf_generate"]
    assert impls.loc["whisper_ort", "ratio_geomean"] == pytest.approx(1.0)
    assert 1.8 < impls.loc["faster_whisper", "ratio_geomean"] < 2.1
    assert impls.loc["faster_whisper", "peak_rss_mb"] == 530.0
    assert set(files_t["file"]) == set(FILES)


def test_beam_records_are_labelled_and_not_taken_for_greedy(study):
    """A `compare --beam-size 5` run left in the study's folder: the report says beam search,
    and the peers notebook sees the records are not the greedy comparison it asks for."""
    summary_path = study["results"] / "benchmarks" / "compare" / "summary.json"
    summary = json.loads(summary_path.read_text())
    assert "greedy decoding" in _build(study, plots=False)
    here = {"cpu_model": "Test CPU 9000", "cpu_count": 2}  # the records' machine
    assert load.compare_mismatch(summary, ["whisper_ort", "faster_whisper"], machine=here) is None
    assert "lack openvino_fp32" in load.compare_mismatch(dict(summary, implementations_order=["whisper_ort"]), ["whisper_ort", "openvino_fp32"], machine=here)
    beam = dict(summary, beam_size=5, implementations_order=["whisper_ort", "faster_whisper"])
    assert "beam size 5, not 1" in load.compare_mismatch(beam, ["whisper_ort"], machine=here)
    summary_path.write_text(json.dumps(beam))
    text = _build(study, plots=False)
    assert "beam search with 5 beams" in text and "greedy decoding" not in text


def test_compare_records_of_another_cpu_are_stale(study):
    """Records committed from one machine are measured again by a study on another (the peers
    notebook runs compare when they are stale), not shown beside figures of this machine."""
    summary = json.loads((study["results"] / "benchmarks" / "compare" / "summary.json").read_text())
    assert load.compare_mismatch(summary, ["whisper_ort"], machine={"cpu_model": "Test CPU 9000", "cpu_count": 2}) is None
    why = load.compare_mismatch(summary, ["whisper_ort"], machine={"cpu_model": "Intel(R) Xeon(R) Platinum 8488C", "cpu_count": 2})
    assert why == "the compare records were measured on Test CPU 9000 (2 CPUs), this machine is Intel(R) Xeon(R) Platinum 8488C (2 CPUs)"
    assert "(4 CPUs)" in load.compare_mismatch(summary, ["whisper_ort"], machine={"cpu_model": "Test CPU 9000", "cpu_count": 4})
    assert load.compare_mismatch(dict(summary, environment={}), ["whisper_ort"], machine={"cpu_model": "Intel", "cpu_count": 2}) is None  # no CPU on record: kept
    peers = _build(study, plots=False).split("## Peers")[1].split("\n## ")[0]
    assert "This run: whisper-base FP32 · Test CPU 9000 (2 CPUs)" in peers  # the table names its own machine


def test_beam_compare_gets_its_own_section_beside_the_greedy_table(study):
    """Records in compare_beam5/ (the peers notebook's beam run): a section with their
    table under Peers; the greedy table stays the greedy run's, and no section without them."""
    bench = study["results"] / "benchmarks"
    assert "### Beam search" not in _build(study, plots=False)
    beam = [_record(impl, f, r, scale=scale) for r in range(2) for f in FILES for impl, scale in (("whisper_ort", 1.5), ("faster_whisper", 2.4))]
    write_records(bench / "compare_beam5", beam, stem="records")
    write_json(bench / "compare_beam5" / "summary.json", {"created": "2025-11-25T11:40:00+00:00", "repeats": 2, "warmup": 1, "beam_size": 5,
                                                          "environment": {"cpu_model": "Test CPU 9000", "cpu_count": 2}})
    (bench / "compare_beam_x").mkdir()  # not a beam size: ignored
    assert load.beam_compare_sizes(paths.StudyPaths.from_results(study["results"])) == [5]
    text = _build(study, plots=False)
    greedy, beam_part = text.split("### Beam search (5 beams)")
    assert "greedy decoding" in greedy and "| faster_whisper | 2 | 3 | 0 | 1.761 | 1.98x |" in greedy
    beam_part = beam_part.split("\n## ")[0]
    assert "compare --beam-size 5" in beam_part and "Test CPU 9000" in beam_part
    assert "| faster_whisper | 2 | 3 | 0 |" in beam_part and "| 1.59x |" in beam_part and "hf_generate" not in beam_part


def test_fidelity_and_diffs(study):
    texts = tables.gather_texts(paths.StudyPaths.from_results(study["results"]))
    assert set(texts) == {"whisper_ort", "faster_whisper", "hf_generate"}
    refs = {"a.wav": "hello there", "b.wav": "the quick brown fox"}
    pairs, ground = tables.fidelity(texts, refs)
    p = pairs.set_index(["a", "b"])
    assert p.loc[("hf_generate", "whisper_ort"), "wer"] == 0.0
    assert p.loc[("hf_generate", "faster_whisper"), "errors"] == 1
    g = ground.set_index("implementation")
    assert g.loc["whisper_ort", "wer"] == 0.0 and g.loc["whisper_ort", "n_files"] == 2
    diffs = tables.file_diffs(texts, "hf_generate", "faster_whisper").set_index("file")
    assert not diffs.loc["b.wav", "identical"] and "+quack" in diffs.loc["b.wav", "diff"]


def test_plots_are_written(study, tmp_path):
    df = load.load_records(study["results"] / "benchmarks" / "latency" / "whisper_ort" / "inference_per_file.json")
    saved = plots.plot_latency_per_file(df, tmp_path / "plots", note="a note")
    assert saved["png"].stat().st_size > 1000 and saved["svg"].read_text().startswith("<?xml")
    assert plots.plot_latency_per_file(load.records_frame([]), tmp_path / "plots") is None


def test_report_command(study, capsys):
    from whisper_ort.cli import main

    rc = main(["report", "--results-dir", str(study["results"]), "--output", str(study["output"]), "--audio-dir", str(study["audio"]), "--no-plots"])
    assert rc == 0
    assert "## Peers" in study["output"].read_text()
    assert "wrote" in capsys.readouterr().out


def test_load_records_tolerates_missing_and_bad_files(tmp_path):
    assert load.load_records(tmp_path / "none.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert load.load_records(bad) is None
    old = tmp_path / "old.json"
    old.write_text(json.dumps([{"file": "x.wav", "t_total": 1.0}]))  # fields missing: filled with None
    df = load.load_records(old)
    assert df.loc[0, "implementation"] == "whisper_ort" and df.loc[0, "status"] == "ok"


def test_repo_root_and_resolve(monkeypatch, tmp_path):
    root = paths.repo_root()
    assert (root / "pyproject.toml").is_file()
    monkeypatch.chdir(root / "tests")
    assert paths.repo_root() == root
    assert paths.resolve("results") == root / "results"
    assert paths.resolve(tmp_path) == tmp_path
    assert Path(paths.resolve("x")).is_absolute()

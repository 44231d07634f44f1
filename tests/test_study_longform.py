"""The long-audio and serving views of the study: tables, notes and plots from small hand-made
longform.json / serving.json contents (no measuring)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from whisper_ort.study import load, plots, tables
from whisper_ort.study.names import IMPL_COLORS, SERVER_COLORS
from whisper_ort.study.paths import StudyPaths

LONGFORM_ROWS = [  # setting, audio s per s, WER
    ("whisper_ort silence batch 1", 23.9, 0.021),
    ("whisper_ort silence batch 8", 29.1, 0.021),
    ("whisper_ort strided batch 8", 24.6, 0.410),
    ("faster_whisper sequential", 20.1, 0.361),
    ("faster_whisper BatchedInferencePipeline batch 8", 20.8, 0.055),
]


def longform_result(cpu: str | None = "Test CPU 9000") -> dict:
    rows = [{"setting": s, "elapsed_s": 300.0 / x, "elapsed_rounds_s": [300.0 / x], "audio_s_per_s": x, "throughput_vs_faster_whisper": x / 20.1,
             "n_windows": 11, "wer": w, "substitutions": 1, "deletions": 2, "insertions": 3, "longest_deletion_run": 1, "text": "hello"}
            for s, x, w in LONGFORM_ROWS]
    result = {"file": "long.wav", "whisper_ort_variant": ["mha"], "minutes": 5.0, "duration_s": 300.0, "pieces": ["a.wav"] * 10, "threads": 2,
              "rounds": 1, "batch_size": 8, "sources": ["a.wav"], "pause_s": 0.0, "rows": rows, "batched_text_identical": {"silence": True},
              "reference_words": 600, "reference_kind": "ground truth", "normalizer": "whisper", "date_utc": "2025-11-25T12:00:00Z"}
    if cpu:
        result["cpu"] = cpu
    return result


SERVING = {  # server: [(clients, req/s, p50 s, p95 s)]
    "batched": [(1, 2.0, 0.5, 0.7), (4, 5.0, 0.8, 1.1), (16, 6.0, 2.6, 3.5)],
    "one_at_a_time": [(1, 1.9, 0.5, 0.6), (4, 2.1, 1.9, 2.4), (16, 2.0, 7.8, 9.9)],
    "faster_whisper": [(1, 1.5, 0.7, 0.9), (4, 2.5, 1.6, 2.0), (16, 2.6, 6.1, 8.0)],
}


def serving_data() -> dict:
    results = [{"server": s, "levels": [{"clients": c, "requests": 10, "ok": 10, "failed": 0, "changed": 0, "elapsed_s": 5.0, "throughput_rps": rps,
                                         "audio_s_per_s": 7 * rps, "p50_s": p50, "p95_s": p95, "cpu_s_per_request": 0.9, "loadavg_1m": 2.0,
                                         "records": [{"client": 0, "latency_s": p50}]} for c, rps, p50, p95 in levels]}
               for s, levels in SERVING.items()]
    meta = {"command": "python -m whisper_ort.measure.serving --duration 5", "duration_s": 5.0, "threads": 2, "max_batch": 8,
            "files": ["a.wav", "b.wav"], "cpu": "Test CPU 9000", "cores": 2}
    return {"meta": meta, "results": results}


def _scatter_points(fig) -> list[tuple[float, float, tuple]]:
    ax = fig.axes[0]
    return [(float(x), float(y), tuple(np.round(c.get_facecolor()[0][:3], 3)))
            for c in ax.collections for x, y in c.get_offsets()]


def _rgb(hex_color: str) -> tuple:
    from matplotlib.colors import to_rgb

    return tuple(np.round(to_rgb(hex_color), 3))


def test_longform_plot_writes_a_png_with_one_point_per_row(tmp_path):
    result = longform_result()
    saved = plots.plot_longform(result, tmp_path / "plots", note=tables.longform_note(result))
    assert saved["png"].is_file() and saved["png"].stat().st_size > 1000
    assert saved["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert saved["svg"].is_file()

    fig = plots.longform_figure(result)
    points = sorted(_scatter_points(fig))
    expected = sorted((x, 100 * w, _rgb(IMPL_COLORS[s.split()[0]])) for s, x, w in LONGFORM_ROWS)
    assert len(points) == len(expected)
    for (px, py, pc), (ex, ey, ec) in zip(points, expected, strict=True):
        assert px == pytest.approx(ex) and py == pytest.approx(ey)
        assert pc == ec  # whisper_ort rows one colour, faster_whisper rows another
    assert _rgb(IMPL_COLORS["whisper_ort"]) != _rgb(IMPL_COLORS["faster_whisper"])
    # every point is numbered, and the key names every setting
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert sorted(labels, key=int) == [str(i + 1) for i in range(len(LONGFORM_ROWS))]
    key = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert [k.split("  ", 1)[1].split(":")[0] for k in key] == [s for s, _, _ in LONGFORM_ROWS]


def test_longform_table_and_note():
    result = longform_result()
    t = tables.longform_table(result)
    assert list(t["setting"]) == [s for s, _, _ in LONGFORM_ROWS]
    assert list(t["implementation"]) == ["whisper_ort"] * 3 + ["faster_whisper"] * 2
    assert list(t["audio_s_per_s"]) == [x for _, x, _ in LONGFORM_ROWS]
    note = tables.longform_note(result)
    assert "Test CPU 9000" in note and "2 thread(s)" in note and "5.0 min of audio" in note and "2025-11-25" in note
    # a file from before longbench named its CPU: this machine's, and the note says so
    assert "the record does not name its CPU" in tables.longform_note(longform_result(cpu=None))
    assert plots.longform_figure({"rows": []}) is None and plots.plot_longform(None, "unused") is None


def test_serving_plot_writes_a_png_with_one_line_per_server(tmp_path):
    data = serving_data()
    saved = plots.plot_serving(data, tmp_path / "plots", note=tables.serving_note(data))
    assert saved["png"].is_file() and saved["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    fig = plots.serving_figure(data)
    thr_ax, lat_ax = fig.axes[:2]
    assert [line.get_label() for line in thr_ax.lines] == list(SERVING)
    for line, (server, levels) in zip(thr_ax.lines, SERVING.items(), strict=True):
        assert list(line.get_xdata()) == [c for c, *_ in levels]
        assert list(line.get_ydata()) == pytest.approx([rps for _, rps, _, _ in levels])
        assert _rgb(line.get_color()) == _rgb(SERVER_COLORS[server])
    lat = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in lat_ax.lines}
    assert len(lat) == 2 * len(SERVING)
    for server, levels in SERVING.items():
        assert lat[f"{server}: p50"] == ([c for c, *_ in levels], pytest.approx([p50 for *_, p50, _ in levels]))
        assert lat[f"{server}: p95"][1] == pytest.approx([p95 for *_, p95 in levels])


def test_serving_table_and_note():
    data = serving_data()
    t = tables.serving_table(data)
    assert len(t) == sum(len(v) for v in SERVING.values())
    assert list(dict.fromkeys(t["server"])) == list(SERVING)  # the file's order
    assert "records" not in t.columns
    note = tables.serving_note(data)
    assert "Test CPU 9000 (2 CPUs)" in note and "5 s of load per level" in note
    assert plots.serving_figure({"meta": {}, "results": []}) is None


def test_loaders_read_the_study_folders(tmp_path):
    paths = StudyPaths.of(tmp_path / "benchmarks", tmp_path / "plots")
    assert load.load_longform(paths) is None and load.load_serving(paths) is None
    paths.longform_dir.mkdir(parents=True)
    (paths.longform_dir / "longform.json").write_text("{not json")
    assert load.load_longform(paths) is None
    (paths.longform_dir / "longform.json").write_text(json.dumps(longform_result()))
    paths.serving_dir.mkdir(parents=True)
    (paths.serving_dir / "serving.json").write_text(json.dumps(serving_data()))
    assert len(load.load_longform(paths)["rows"]) == len(LONGFORM_ROWS)
    assert [r["server"] for r in load.load_serving(paths)["results"]] == list(SERVING)


def test_results_md_sections(tmp_path):
    from whisper_ort.measure.longbench import markdown
    from whisper_ort.study import results_md

    results = tmp_path / "results"
    text = results_md.build_results_md(results, tmp_path / "R.md", audio_dir=tmp_path / "audio")
    assert "## Long audio throughput" in text and "## Serving under concurrent clients" in text
    assert "Not measured in this run: `python -m whisper_ort.measure.longbench --output-dir " in text
    assert "Not measured in this run: `python -m whisper_ort.measure.serving --output-dir " in text

    bench = results / "benchmarks"
    (bench / "longform").mkdir(parents=True)
    result = longform_result()
    (bench / "longform" / "longform.json").write_text(json.dumps(result))
    (bench / "longform" / "longform.md").write_text(markdown(result))
    (bench / "serving").mkdir()
    (bench / "serving" / "serving.json").write_text(json.dumps(serving_data()))  # no serving.md: the table from the json
    text = results_md.build_results_md(results, tmp_path / "R.md", audio_dir=tmp_path / "audio")
    assert "Not measured in this run" not in text
    assert "| whisper_ort silence batch 8 | 10.3 |" in text  # longform.md's table
    assert "| faster_whisper | 16 | 2.60 | 18.2 | 6.10 | 8.00 | 0 |" in text
    assert "![long audio: WER against throughput](results/plots/longform_wer_throughput.svg)" in text
    assert "![serving: throughput and latency against clients](results/plots/serving.svg)" in text
    assert (results / "plots" / "longform_wer_throughput.png").is_file() and (results / "plots" / "serving.png").is_file()
    assert results_md.build_results_md(results, tmp_path / "R.md", audio_dir=tmp_path / "audio") == text  # deterministic

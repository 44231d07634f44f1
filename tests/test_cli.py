"""The `whisper-ort` commands end to end on the real model: outputs, exit codes, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bad_audio import make_bad_corpus
from conftest import JFK_TEXT, REPO

from whisper_ort.cli import main

CLI = [sys.executable, "-m", "whisper_ort.cli"]


def run_cli(*args, cwd=REPO):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=600)


# The corpus's files that decode and could still trip what comes after the decoder (names the
# shell or a writer could misread, non-finite or silent samples, a half file, a video container).
# The rest (every bit depth, rate and channel count) are load_audio's matter, each checked in
# test_bad_audio.py; through the CLI each would cost an encoder run (~1 s) and test nothing new.
DECODING_TO_THE_END = {"-leading-dash.wav", "ünïcødé 音声.wav", "name with spaces.wav", "nan_inf.wav", "all_nan.wav",
                       "silence.wav", "truncated_half.mp3", "video_then_audio.mp4"}


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory, audio_dir):
    """Two real clips, every file of the bad-input corpus that must fail, and the few that decode
    listed above, in one folder."""
    d = tmp_path_factory.mktemp("mixed")
    for name in ("jfk.flac", "lj_LJ001-0002.wav"):
        shutil.copy(audio_dir / name, d / name)
    expected = make_bad_corpus(d)
    for name, verdict in list(expected.items()):
        if verdict == "ok" and name not in DECODING_TO_THE_END:
            (d / name).unlink()
            del expected[name]
    assert sum(v == "error" for v in expected.values()) >= 8 and len(expected) >= 15
    return d, expected


def test_bench_writes_records_summary_and_transcripts(tmp_path, audio_dir, model_dir):
    out = tmp_path / "out"
    proc = run_cli("bench", "--audio-dir", audio_dir, "--files", "jfk.flac", "--onnx-dir", model_dir,
                   "--output-dir", out, "--write-txt", "--repeats", "2", "--warmup", "1", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    records = json.loads((out / "inference_per_file.json").read_text())
    assert [(r["file"], r["repeat"]) for r in records] == [("jfk.flac", 0), ("jfk.flac", 1)]
    for r in records:
        assert r["status"] == "ok" and r["text"] == JFK_TEXT
        assert r["n_tokens"] == 25 and r["language"] == "en"
        assert all(r[k] > 0 for k in ("t_load_audio", "t_features", "t_encoder", "t_decoder_first", "t_decoder_loop", "t_total"))
        assert r["rtf"] == pytest.approx(r["t_total"] / r["duration_s"])
    summary = json.loads((out / "inference_summary.json").read_text())
    assert summary["n_ok"] == 1 and summary["n_failed"] == 0
    assert set(summary["t_total_s"]) >= {"mean", "p50", "p95", "min", "max"}
    env = summary["environment"]
    assert env["cpu_model"] and env["packages"]["onnxruntime"] and env["transcriber"]["session"]["threads"] == 2
    assert (out / "inference_per_file.csv").read_text().startswith("file,duration_s,implementation")
    assert (out / "jfk.flac.transcript.txt").read_text().strip() == JFK_TEXT


def test_bench_bad_inputs_become_error_records(tmp_path, mixed_dir, model_dir):
    folder, expected = mixed_dir
    out = tmp_path / "out"
    proc = run_cli("bench", "--audio-dir", folder, "--onnx-dir", model_dir, "--output-dir", out,
                   "--warmup", "0", "--max-new-tokens", "32", "--no-progress")
    assert proc.returncode == 1, "a failed file must make the exit code non-zero"
    assert "Traceback" not in proc.stderr
    records = {r["file"]: r for r in json.loads((out / "inference_per_file.json").read_text())}
    assert records["jfk.flac"]["status"] == "ok"
    assert records["lj_LJ001-0002.wav"]["text"] == "in being comparatively modern."
    for name, want in expected.items():
        if Path(name).suffix.lower() not in (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus", ".mp4", ".aiff", ".webm"):
            continue
        assert name in records, f"{name} has no record"
        got = records[name]
        assert got["status"] == want, f"{name}: {got['status']} ({got['error']})"
        if want == "error":
            assert name in got["error"] and "\n" not in got["error"]


def test_all_good_files_exit_zero(tmp_path, audio_dir, model_dir):
    proc = run_cli("bench", "--audio-dir", audio_dir, "--files", "lj_LJ001-0002.wav", "--onnx-dir", model_dir,
                   "--output-dir", tmp_path, "--warmup", "0", "--no-progress")
    assert proc.returncode == 0, proc.stderr


def test_resume_skips_finished_records(tmp_path, audio_dir, model_dir):
    out = tmp_path / "out"
    args = ["bench", "--audio-dir", audio_dir, "--files", "lj_LJ001-000[24].wav", "--onnx-dir", model_dir,
            "--output-dir", out, "--warmup", "0", "--no-progress"]
    assert run_cli(*args).returncode == 0
    first = json.loads((out / "inference_per_file.json").read_text())
    proc = run_cli(*args, "--resume")
    assert proc.returncode == 0 and "2 record(s) already done" in proc.stderr
    assert json.loads((out / "inference_per_file.json").read_text()) == first


def test_model_folder_faults_are_named_before_audio(tmp_path, model_dir, audio_dir):
    broken = tmp_path / "model"
    broken.mkdir()
    for f in model_dir.iterdir():
        if f.name != "decoder_with_past_model.onnx":
            (broken / f.name).symlink_to(f)
    proc = run_cli("transcribe", audio_dir / "jfk.flac", "--onnx-dir", broken)
    assert proc.returncode == 2
    assert "decoder_with_past_model.onnx: missing" in proc.stderr and "Traceback" not in proc.stderr

    # A truncated ONNX file: named, one line per problem, no traceback.
    (broken / "decoder_with_past_model.onnx").write_bytes((model_dir / "decoder_with_past_model.onnx").read_bytes()[:4096])
    proc = run_cli("transcribe", audio_dir / "jfk.flac", "--onnx-dir", broken)
    assert proc.returncode == 2 and "decoder_with_past_model.onnx" in proc.stderr and "Traceback" not in proc.stderr


def test_generation_config_and_tokenizer_faults(tmp_path, model_dir, audio_dir):
    broken = tmp_path / "model"
    broken.mkdir()
    for f in model_dir.iterdir():
        if f.name not in ("generation_config.json", "tokenizer.json"):
            (broken / f.name).symlink_to(f)
    gen = json.loads((model_dir / "generation_config.json").read_text())
    del gen["no_timestamps_token_id"]
    (broken / "generation_config.json").write_text(json.dumps(gen))
    shutil.copy(model_dir / "tokenizer.json", broken / "tokenizer.json")
    proc = run_cli("transcribe", audio_dir / "jfk.flac", "--onnx-dir", broken)
    assert proc.returncode == 2 and "generation_config.json: missing required ids: no_timestamps_token_id" in proc.stderr

    # A tokenizer whose special ids do not fit the model.
    shutil.copy(model_dir / "generation_config.json", broken / "generation_config.json")
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    for t in tok["added_tokens"]:
        if t["content"] == "<|en|>":
            t["content"] = "<|xx|>"
    (broken / "tokenizer.json").write_text(json.dumps(tok))
    proc = run_cli("transcribe", audio_dir / "jfk.flac", "--onnx-dir", broken)
    assert proc.returncode == 2 and "tokenizer.json" in proc.stderr and "Traceback" not in proc.stderr


def test_transcribe_writes_formats(tmp_path, audio_dir, model_dir, capsys):
    for fmt in ("txt", "srt", "vtt", "json"):
        # --per-session-threads: a process-wide ORT pool would bind every later session of this pytest process
        assert main(["transcribe", str(audio_dir / "jfk.flac"), "--onnx-dir", str(model_dir), "--format", fmt, "--output-dir", str(tmp_path), "--per-session-threads"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == JFK_TEXT
    assert (tmp_path / "jfk.flac.txt").read_text().strip() == JFK_TEXT
    srt = (tmp_path / "jfk.flac.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> ") and "ask not" in srt
    assert (tmp_path / "jfk.flac.vtt").read_text().startswith("WEBVTT")
    data = json.loads((tmp_path / "jfk.flac.json").read_text())
    assert data["language"] == "en" and len(data["segments"]) == 1 and data["tokens"][0] < 50257


def test_the_cli_shares_one_thread_pool_unless_told_not_to():
    """The CLI's process holds only our sessions: one pool by default (the library: one per
    session, test_api); --per-session-threads gives a pool each, --shared-pool is accepted."""
    from whisper_ort.cli import build_parser, model_options

    for argv, shared in (([], True), (["--per-session-threads"], False), (["--shared-pool"], True),
                         (["--no-spinning"], False), (["--keep-spinning"], False), (["--per-session-threads", "--no-spinning"], False)):
        for command in ("transcribe", "bench", "serve"):
            args = build_parser().parse_args([command, *(["x.wav"] if command == "transcribe" else []), *argv])
            assert model_options(args).session.shared_pool is shared, (command, argv)


def test_spinning_flags_with_the_shared_pool_are_refused():
    """ONNX Runtime's global pool ignores the sessions' spinning settings: asking for both
    is a one-line error naming the flag, not a setting silently dropped."""
    proc = run_cli("transcribe", "x.wav", "--shared-pool", "--no-spinning")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("whisper-ort: error: --no-spinning") and "--shared-pool" in last and "Traceback" not in proc.stderr


def test_shared_pool_runs_every_session_of_the_process_on_it(tmp_path, audio_dir, model_dir):
    """--shared-pool: once ONNX Runtime's process-wide pool exists it refuses any session
    with its own threads; vad's Silero session (made after the model's) joins the pool too."""
    proc = run_cli("transcribe", audio_dir / "jfk.flac", "--onnx-dir", model_dir, "--shared-pool", "--chunking", "vad",
                   "--language", "en", "--output-dir", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == JFK_TEXT


def test_transcribe_missing_file_is_one_line(tmp_path, model_dir):
    proc = run_cli("transcribe", tmp_path / "nope.wav", "--onnx-dir", model_dir)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("whisper-ort: error: ") and "nope.wav" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_diff_reports_wer(tmp_path, capsys):
    a = [{"file": "x.wav", "text": "ask not what your country can do", "status": "ok"}, {"file": "y.wav", "text": "same", "status": "ok"}]
    b = [{"file": "x.wav", "text": "ask not what the country can do", "status": "ok"}, {"file": "y.wav", "text": "same", "status": "ok"}]
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert main(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
    out = capsys.readouterr().out
    assert "-your" in out and "+the" in out
    assert "WER x.wav: 14.29%" in out and "1/2 files identical" in out


def test_output_names_stay_in_the_output_folder(tmp_path):
    from whisper_ort.measure.bench import safe_output_path

    for name in ("../../etc/passwd", "..", "-rf", "a b.wav", "ünï.wav", "/abs/x.wav"):
        path = safe_output_path(tmp_path, name, ".transcript.txt")
        assert path.parent == tmp_path.resolve()


# ---------------------------------------------------------------- openai/whisper's flag names, groups, formats

OPENAI_FORMS = [
    ("--beam_size", "--beam-size", "5"), ("--best_of", "--best-of", "3"), ("--patience", "--patience", "2"),
    ("--length_penalty", "--length-penalty", "0.5"), ("--initial_prompt", "--initial-prompt", "Hello."),
    ("--temperature_increment_on_fallback", "--temperature-increment-on-fallback", "0.25"),
    ("--no_speech_threshold", "--no-speech-threshold", "0.5"), ("--logprob_threshold", "--logprob-threshold", "None"),
    ("--compression_ratio_threshold", "--compression-ratio-threshold", "2.0"), ("--suppress_tokens=-1,11", "--suppress-tokens=-1,11", None),
    ("--language", "--language", "de"), ("--task", "--task", "translate"), ("--max_new_tokens", "--max-new-tokens", "64"),
]


def _options(*argv):
    from whisper_ort.cli import build_parser, decoding_options

    return decoding_options(build_parser("transcribe").parse_args(["transcribe", "x.wav", *argv]))


def test_underscore_and_dash_forms_give_the_same_options():
    from whisper_ort.core.decoding import DecodingOptions

    under = [a for u, _, v in OPENAI_FORMS for a in ((u, v) if v is not None else (u,))]
    dash = [a for _, d, v in OPENAI_FORMS for a in ((d, v) if v is not None else (d,))]
    got = _options(*under, "--condition_on_previous_text", "True", "--word_timestamps", "True")
    assert got == _options(*dash, "--condition-on-previous-text", "--word-timestamps")
    assert got != DecodingOptions()
    assert (got.beam_size, got.best_of, got.patience, got.length_penalty, got.logprob_threshold) == (5, 3, 2.0, 0.5, None)
    assert got.temperature == (0.0, 0.25, 0.5, 0.75, 1.0)  # openai/whisper's fallback list from one temperature
    assert got.suppress_tokens == (-1, 11) and got.language == "de" and got.task == "translate"
    assert got.condition_on_previous_text and got.word_timestamps and got.initial_prompt == "Hello."
    assert not _options("--condition_on_previous_text", "False").condition_on_previous_text
    assert _options("--suppress_tokens", "").suppress_tokens == () and _options("--temperature", "0.2", "0.6").temperature == (0.2, 0.6)
    assert _options().language is None and _options("--language", "auto").language is None


def test_help_groups_the_flags(capsys):
    with pytest.raises(SystemExit):
        main(["transcribe", "--help"])
    text = capsys.readouterr().out
    heads = [text.index(h) for h in ("\noutput:", "\nONNX Runtime:", "\ndecoding:")]
    assert heads == sorted(heads)
    runtime = text[heads[1] : heads[2]]
    decoding = text[heads[2] :]
    assert "--threads" in runtime and "--inter-threads" in runtime and "--beam" not in runtime
    assert "--beam-size BEAM_SIZE, --beam_size BEAM_SIZE" in decoding and "--threads" not in decoding
    assert "--output_format" in text[heads[0] : heads[1]] and "--highlight_words" in text[heads[0] : heads[1]]


def test_transcribe_output_format_all_writes_each_parsed(tmp_path, audio_dir, model_dir, capsys):
    import csv

    import srt
    import webvtt

    argv = ["transcribe", str(audio_dir / "jfk.flac"), "--onnx-dir", str(model_dir), "--output_format", "all", "--output_dir", str(tmp_path), "--per-session-threads"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == JFK_TEXT
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"jfk.flac.{f}" for f in ("txt", "vtt", "srt", "tsv", "json"))
    assert (tmp_path / "jfk.flac.txt").read_text().strip() == JFK_TEXT
    subs = list(srt.parse((tmp_path / "jfk.flac.srt").read_text()))
    vtt = webvtt.read(str(tmp_path / "jfk.flac.vtt"))
    rows = list(csv.reader((tmp_path / "jfk.flac.tsv").open(encoding="utf-8"), delimiter="\t"))
    data = json.loads((tmp_path / "jfk.flac.json").read_text())
    assert " ".join(s.content for s in subs) == " ".join(c.text for c in vtt) == " ".join(r[2] for r in rows[1:]) == JFK_TEXT
    assert rows[0] == ["start", "end", "text"] and all(int(r[0]) <= int(r[1]) for r in rows[1:])
    assert [s.start.total_seconds() * 1000 for s in subs] == [int(r[0]) for r in rows[1:]]
    # the command detects the language (no --language): openai/whisper's json, the probabilities beside it
    assert data["language"] == "en" and max(data["language_probs"], key=data["language_probs"].get) == "en"
    assert [s["id"] for s in data["segments"]] == list(range(len(subs)))
    assert all(s["compression_ratio"] > 0 and s["temperature"] == 0.0 and "words" not in s for s in data["segments"])


@pytest.mark.parametrize("argv, message", [
    (["--output_format", "docx"], "invalid choice: 'docx'"),
    (["--suppress_tokens", "abc"], "'abc' is not a token id"),
    (["--suppress_tokens=99999999"], "suppress_tokens: 99999999 is not a token id"),
    (["--condition_on_previous_text", "maybe"], "expected True or False"),
])
def test_bad_cli_values_are_one_clear_line(argv, message, audio_dir, model_dir):
    proc = run_cli("transcribe", audio_dir / "jfk.flac", "--onnx-dir", model_dir, *argv)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr

"""The server end to end: uvicorn on 127.0.0.1, the official openai client, the real model.

One in-process server (a uvicorn thread over the session's Transcriber) answers most tests;
the SIGTERM test starts `whisper-ort serve` in its own process. Every loop is bounded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from bad_audio import make_bad_corpus, tone
from conftest import JFK_TEXT, REPO

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")

from whisper_ort.core.audio import load_audio  # noqa: E402
from whisper_ort.core.decoding import DecodingOptions  # noqa: E402
from whisper_ort.core.features import log_mel_batch  # noqa: E402
from whisper_ort.core.longform import split  # noqa: E402
from whisper_ort.core.writers import to_srt, to_txt, to_vtt  # noqa: E402
from whisper_ort.serve.app import ServeSettings, create_app  # noqa: E402
from whisper_ort.serve.batcher import Batcher, Job, JobCancelled, QueueFull, ShuttingDown  # noqa: E402

LIMIT_MB = 3.0  # the test server's upload limit: every sample file is under it


class Errors(logging.Handler):
    """Log records at ERROR and above (a traceback in the server would land here)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@contextlib.contextmanager
def running(app):
    """uvicorn serving `app` in a thread on a loopback socket bound here (no port race)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(300):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start in 15 s"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture(scope="module")
def served(transcriber, tmp_path_factory):
    uploads = tmp_path_factory.mktemp("uploads")
    settings = ServeSettings(max_batch=8, batch_wait_ms=50, max_queue=6, request_timeout_s=120, max_upload_mb=LIMIT_MB, upload_dir=str(uploads))
    app = create_app(transcriber, settings)
    errors = Errors()
    for name in ("uvicorn.error", "uvicorn", "whisper_ort.serve", "fastapi"):
        logging.getLogger(name).addHandler(errors)
    with running(app) as url:
        yield {"url": url, "app": app, "uploads": uploads, "errors": errors}
    for name in ("uvicorn.error", "uvicorn", "whisper_ort.serve", "fastapi"):
        logging.getLogger(name).removeHandler(errors)


@pytest.fixture(scope="module")
def reference(transcriber, audio_dir):
    """transcriber.transcribe(audio_dir / name, **options), each computed once for the module."""
    cache = {}

    def get(name: str, **options):
        key = (name, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = transcriber.transcribe(audio_dir / name, **options)
        return cache[key]

    return get


@pytest.fixture(scope="module")
def client(served):
    return openai.OpenAI(base_url=f"{served['url']}/v1", api_key="x", max_retries=0, timeout=120)


# ---------------------------------------------------------------- the openai client, every format


def test_every_response_format_through_the_openai_client(client, reference, audio_dir):
    path = audio_dir / "jfk.flac"
    plain = reference("jfk.flac")
    stamped = reference("jfk.flac", timestamps=True)
    got = {}
    for fmt in ("json", "text", "srt", "vtt", "verbose_json"):
        with open(path, "rb") as f:
            got[fmt] = client.audio.transcriptions.create(file=f, model="whisper-1", response_format=fmt)
    assert got["json"].text == plain.text.strip() == JFK_TEXT
    assert got["text"] == to_txt(plain)
    assert got["srt"] == to_srt(stamped) and got["vtt"] == to_vtt(stamped)
    verbose = got["verbose_json"]
    assert verbose.text == stamped.text.strip() and verbose.language == "en"
    assert verbose.duration == pytest.approx(11.0, abs=0.01)
    assert [(s.start, s.end, s.text, s.tokens) for s in verbose.segments] == [(s.start, s.end, s.text, s.tokens) for s in stamped.segments]
    assert [s.id for s in verbose.segments] == list(range(len(stamped.segments))) and all(s.seek == 0 for s in verbose.segments)


def test_language_model_and_segment_granularity_fields(client, transcriber, audio_dir):
    path = audio_dir / "lj_LJ001-0002.wav"
    with open(path, "rb") as f:
        auto = client.audio.transcriptions.create(file=f, model="whisper-base", language="auto", response_format="verbose_json",
                                                  timestamp_granularities=["segment"], temperature=0)
    expected = transcriber.transcribe(path, language=None, timestamps=True)
    assert auto.language == "en" and auto.text == expected.text.strip() and len(auto.segments) == len(expected.segments)
    assert auto.words is None  # only with timestamp_granularities[]=word


def test_word_granularity_gives_the_librarys_words(client, transcriber, audio_dir):
    path = audio_dir / "jfk.flac"
    with open(path, "rb") as f:
        got = client.audio.transcriptions.create(file=f, model="whisper-1", response_format="verbose_json", timestamp_granularities=["word", "segment"])
    expected = transcriber.transcribe(path, word_timestamps=True)
    words = [w for s in expected.segments for w in s.words]
    assert len(words) == 22 and got.text == expected.text.strip()
    assert [(w.word, w.start, w.end) for w in got.words] == [(w.word, w.start, w.end) for w in words]
    assert [(s.start, s.end, s.text) for s in got.segments] == [(s.start, s.end, s.text) for s in expected.segments]


def test_prompt_and_temperature_reach_the_decoder(client, transcriber, audio_dir):
    """prompt is the initial prompt (the library's text with the same one, not the text
    without); temperature above 0 samples, seeded as the server's options are."""
    path = audio_dir / "lj_LJ001-0002.wav"
    prompt = "In being comparatively modern, ...."
    with open(path, "rb") as f:
        got = client.audio.transcriptions.create(file=f, model="whisper-1", response_format="verbose_json", prompt=prompt)
    expected = transcriber.transcribe(path, initial_prompt=prompt, timestamps=True)
    assert got.text == expected.text.strip() and [s.tokens for s in got.segments] == [s.tokens for s in expected.segments]
    plain = transcriber.transcribe(path, timestamps=True)
    assert [s.tokens for s in expected.segments] != [s.tokens for s in plain.segments]  # the prompt changed the decode
    with open(path, "rb") as f:
        hot = client.audio.transcriptions.create(file=f, model="whisper-1", response_format="verbose_json", temperature=0.8)
    sampled = transcriber.transcribe(path, temperature=0.8, timestamps=True)
    assert hot.text == sampled.text.strip() and all(s.temperature == 0.8 for s in hot.segments)


def test_translation_endpoint(client, reference, audio_dir):
    with open(audio_dir / "jfk.flac", "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # this openai version marks translations deprecated
        got = client.audio.translations.create(file=f, model="whisper-1")
    assert got.text == reference("jfk.flac", task="translate").text.strip()


def test_stream_sends_one_event_per_segment(client, reference, audio_dir):
    """60 s of speech: three windows (the default chunking's), their segments in order as they finish, then done."""
    path = audio_dir / "silero_test.wav"
    expected = reference("silero_test.wav", timestamps=True)
    with open(path, "rb") as f:
        events = list(client.audio.transcriptions.create(file=f, model="whisper-1", stream=True))
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    assert [e.type for e in events] == ["transcript.text.delta"] * len(deltas) + ["transcript.text.done"]
    assert [d.delta for d in deltas] == [s.text for s in expected.segments]
    assert [(d.segment["start"], d.segment["end"]) for d in deltas] == [(s.start, s.end) for s in expected.segments]
    starts = {w.start // 160 for w, _ in split(load_audio(path), chunking=DecodingOptions().chunking)}  # in mel frames, as "seek"
    assert {d.segment["seek"] for d in deltas} == starts and len(starts) == 3
    assert events[-1].text == expected.text.strip() and len(deltas) >= 3


def test_concurrent_requests_get_their_own_text(served, reference, audio_dir):
    names = ["jfk.flac", "lj_LJ001-0002.wav", "sr_english.wav", "hotwords.mp3"]
    expected = {n: reference(n).text.strip() for n in names}
    got: dict[str, str] = {}

    def one(name):
        with httpx.Client(timeout=120) as c:
            r = c.post(f"{served['url']}/v1/audio/transcriptions", files={"file": (name, (audio_dir / name).read_bytes())}, data={"model": "whisper-1"})
            got[name] = r.json()["text"] if r.status_code == 200 else f"{r.status_code} {r.text}"

    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert got == expected


def test_models_health_page_and_openapi(client, served):
    assert {m.id for m in client.models.list()} >= {"whisper-1", "whisper-base"}
    with httpx.Client(base_url=served["url"], timeout=30) as c:
        health = c.get("/health").json()
        assert health["status"] == "ok" and health["max_batch"] == 8 and health["batches"] >= 1
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and 'id="record"' in page.text
        schema = c.get("/openapi.json").json()
        assert {"/v1/audio/transcriptions", "/v1/audio/translations", "/v1/models", "/health"} <= set(schema["paths"])
        body = schema["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        ref = body["$ref"].rsplit("/", 1)[-1] if "$ref" in body else None
        fields = set((schema["components"]["schemas"][ref] if ref else body)["properties"])
        assert {"file", "model", "language", "prompt", "response_format", "temperature", "timestamp_granularities[]", "stream"} <= fields


# ---------------------------------------------------------------- batching across requests


def _job(transcriber, path, options, timeout_s=60.0):
    samples = load_audio(path)
    pieces = split(samples, chunking=options.chunking)
    return Job([w for w, _ in pieces], log_mel_batch([p for _, p in pieces]), len(samples) / 16000, options, timeout_s)


def test_windows_of_several_requests_share_one_batch(transcriber, reference, audio_dir):
    """Jobs queued before the thread starts: one encoder batch and one decoder batch for all, each text its own."""
    from whisper_ort import DecodingOptions

    names = ["jfk.flac", "lj_LJ001-0002.wav", "silero_test.wav"]  # 1 + 1 + 3 windows
    batcher = Batcher(transcriber, max_batch=8, max_wait_s=0.0, max_queue=8)
    futures = []
    for n in names:
        batcher.reserve()
        futures.append(batcher.submit(_job(transcriber, audio_dir / n, DecodingOptions())))
    batcher.start()
    texts = [f.result(timeout=120).text for f in futures]
    batcher.stop(30)
    assert texts == [reference(n).text for n in names]
    assert batcher.stats["batches"] == 1 and batcher.stats["max_rows"] == 5


def test_round_robin_batches_and_different_options_apart(transcriber, reference, audio_dir):
    """max_batch 2: the 60 s file's three windows do not hold back the short file; timestamped jobs batch apart."""
    from whisper_ort import DecodingOptions

    batcher = Batcher(transcriber, max_batch=2, max_wait_s=0.0, max_queue=8)
    jobs = [_job(transcriber, audio_dir / "silero_test.wav", DecodingOptions()), _job(transcriber, audio_dir / "jfk.flac", DecodingOptions()),
            _job(transcriber, audio_dir / "jfk.flac", DecodingOptions(timestamps=True))]
    order = []
    for job in jobs:
        job.on_window = lambda i, w, r, job=job: order.append((jobs.index(job), i))
        batcher.reserve()
        batcher.submit(job)
    batcher.start()
    results = [j.future.result(timeout=120) for j in jobs]
    batcher.stop(30)
    assert order[:2] == [(0, 0), (1, 0)]  # the first batch: one window of each plain job
    assert results[2].segments[0].start == 0.0 and results[1].text == results[2].text
    assert results[0].text == reference("silero_test.wav").text and results[2].segments == reference("jfk.flac", timestamps=True).segments
    assert batcher.stats["batches"] == 3  # silero 0 + jfk, silero 1 + 2, then the timestamped jfk on its own


def test_bounded_wait_gathers_clients_that_send_again_together(transcriber, audio_dir):
    """After a batch of two requests the next batch waits (bounded) for two again; a lone first
    request does not wait at all (its answer comes long before the 60 s wait would end)."""
    from whisper_ort import DecodingOptions

    clip = audio_dir / "lj_LJ001-0002.wav"
    batcher = Batcher(transcriber, max_batch=8, max_wait_s=60.0, max_queue=8)
    batcher.start()
    try:
        batcher.reserve()
        batcher.submit(_job(transcriber, clip, DecodingOptions())).result(timeout=30)  # alone: no wait
        first = [_job(transcriber, clip, DecodingOptions()) for _ in range(2)]
        for _ in first:
            batcher.reserve()
        for job in first:  # both reserved before either is submitted: the batch waits for the second
            batcher.submit(job)
        [job.future.result(timeout=60) for job in first]
        batcher.reserve()
        third = batcher.submit(_job(transcriber, clip, DecodingOptions()))
        time.sleep(0.3)  # the batcher holds the third request for a partner (two came last time)
        batcher.reserve()
        fourth = batcher.submit(_job(transcriber, clip, DecodingOptions()))
        assert third.result(timeout=60).text == fourth.result(timeout=60).text
    finally:
        batcher.stop(30)
    assert batcher.stats["batches"] == 3 and batcher.stats["windows"] == 5 and batcher.stats["max_rows"] == 2


def test_the_next_batch_waits_for_requests_that_came_during_the_last(transcriber, audio_dir):
    """A request that arrives while a batch of two runs counts: the next batch waits (bounded) for
    three, so closed-loop clients do not settle into a small batch and a large one."""
    from whisper_ort import DecodingOptions

    clip = audio_dir / "lj_LJ001-0002.wav"
    first, (c, d, e) = [_job(transcriber, clip, DecodingOptions()) for _ in range(2)], [_job(transcriber, clip, DecodingOptions()) for _ in range(3)]
    batcher = Batcher(transcriber, max_batch=8, max_wait_s=60.0, max_queue=8)

    sent = []

    def arrives_during_the_batch(*_):  # called by the batcher as the first batch's results come in
        if not sent:
            sent.append(c)
            batcher.reserve()
            batcher.submit(c)

    first[0].on_window = arrives_during_the_batch
    for _ in first:
        batcher.reserve()
    for job in first:
        batcher.submit(job)
    batcher.start()
    try:
        [job.future.result(timeout=60) for job in first]
        time.sleep(0.3)  # c waits: three were active in the last batch
        assert not c.future.done()
        for job in (d, e):
            batcher.reserve()
            batcher.submit(job)
            time.sleep(0.3)  # d alone does not start the batch: c and d wait for a third
        assert c.future.result(timeout=60).text == d.future.result(timeout=60).text == e.future.result(timeout=60).text
    finally:
        batcher.stop(30)
    assert batcher.stats["batches"] == 2 and batcher.stats["max_rows"] == 3


def test_transcribe_batch_equals_transcribe(transcriber, reference, audio_dir):
    """The core helper: windows of several files in shared batches (silero's three with the others), each file's own text."""
    for names, timestamps in ((["jfk.flac", "sr_english.wav", "silero_test.wav"], False), (["jfk.flac", "lj_LJ001-0002.wav"], True)):
        batched = transcriber.transcribe_batch([load_audio(audio_dir / n) for n in names], batch_size=4, timestamps=timestamps)
        single = [reference(n, timestamps=timestamps) if timestamps else reference(n) for n in names]
        assert [b.text for b in batched] == [s.text for s in single]
        assert [b.tokens for b in batched] == [s.tokens for s in single]
        assert [b.segments for b in batched] == [s.segments for s in single]


def test_queue_bound_cancel_and_shutdown(transcriber, audio_dir):
    from whisper_ort import DecodingOptions

    batcher = Batcher(transcriber, max_batch=4, max_queue=2)
    batcher.reserve()
    batcher.reserve()
    with pytest.raises(QueueFull) as full:
        batcher.reserve()
    assert full.value.retry_after_s >= 1
    late = _job(transcriber, audio_dir / "jfk.flac", DecodingOptions(), timeout_s=0.0)
    gone = _job(transcriber, audio_dir / "jfk.flac", DecodingOptions())
    batcher.submit(late)
    batcher.submit(gone)
    batcher.cancel(gone)
    batcher.start()
    with pytest.raises(JobCancelled, match="timed out"):
        late.future.result(timeout=30)
    with pytest.raises(JobCancelled, match="cancelled"):
        gone.future.result(timeout=30)
    batcher.stop(30)
    assert batcher.stats["batches"] == 0  # neither was decoded
    with pytest.raises(ShuttingDown):
        batcher.reserve()


# ---------------------------------------------------------------- bad requests


def _raw(url: str, data: bytes, answer: bool = False) -> bytes:
    """Send raw bytes; hang up at once (a client that leaves mid-upload) or read the answer's first bytes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        return s.recv(65536) if answer else b""


def test_malformed_requests_get_4xx_and_the_server_lives(served, tmp_path, audio_dir, transcriber):
    url, errors = served["url"], served["errors"]
    errors.records.clear()
    corpus = tmp_path / "bad"
    expected = make_bad_corpus(corpus)
    bad_files = [n for n, v in sorted(expected.items()) if v == "error" and (corpus / n).is_file()]
    assert len(bad_files) >= 9
    jfk = (audio_dir / "jfk.flac").read_bytes()
    png = b"\x89PNG\r\n\x1a\n" + np.random.default_rng(3).bytes(2000)
    endpoint = "/v1/audio/transcriptions"
    cases: list[tuple[str, dict, set[int]]] = []
    for name in bad_files:
        cases.append((f"bad file {name}", {"files": {"file": (name, (corpus / name).read_bytes())}}, {400, 415}))
    cases += [
        ("no file field", {"data": {"model": "whisper-1"}, "files": {"other": ("x.txt", b"hello")}}, {400}),
        ("file as a text field", {"data": {"file": "not a file", "model": "whisper-1"}, "files": {"x": ("a", b"")}}, {400}),
        ("a png image", {"files": {"file": ("picture.png", png, "image/png")}}, {415}),
        ("a pdf", {"files": {"file": ("doc.pdf", b"%PDF-1.4\n" + b"0" * 3000, "application/pdf")}}, {415}),
        ("too large", {"files": {"file": ("big.wav", b"\0" * int((LIMIT_MB + 1) * 1024 * 1024))}}, {413}),
        ("response_format xml", {"files": {"file": ("jfk.flac", jfk)}, "data": {"response_format": "xml"}}, {400}),
        ("temperature 1.5", {"files": {"file": ("jfk.flac", jfk)}, "data": {"temperature": "1.5"}}, {400}),
        ("temperature -1", {"files": {"file": ("jfk.flac", jfk)}, "data": {"temperature": "-1"}}, {400}),
        ("temperature not a number", {"files": {"file": ("jfk.flac", jfk)}, "data": {"temperature": "warm"}}, {400}),
        ("granularity char", {"files": {"file": ("jfk.flac", jfk)}, "data": {"timestamp_granularities[]": "char"}}, {400}),
        ("language klingon", {"files": {"file": ("jfk.flac", jfk)}, "data": {"language": "tlh"}}, {400}),
        ("unknown model", {"files": {"file": ("jfk.flac", jfk)}, "data": {"model": "gpt-99-transcribe"}}, {400}),
        ("stream maybe", {"files": {"file": ("jfk.flac", jfk)}, "data": {"stream": "maybe"}}, {400}),
        ("json body", {"json": {"file": "jfk.flac", "model": "whisper-1"}}, {415}),
        ("urlencoded body", {"data": {"model": "whisper-1"}}, {415}),
        ("multipart without boundary", {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}}, {400}),
        ("garbage multipart", {"content": np.random.default_rng(4).bytes(5000), "headers": {"content-type": "multipart/form-data; boundary=zz"}}, {400}),
        ("empty multipart", {"content": b"", "headers": {"content-type": "multipart/form-data; boundary=zz"}}, {400}),
        ("truncated multipart", {"content": b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF',
                                 "headers": {"content-type": "multipart/form-data; boundary=zz"}}, {400}),
    ]
    answers = []
    with httpx.Client(base_url=url, timeout=60) as c:
        for label, kwargs, statuses in cases:
            r = c.post(endpoint, **kwargs)
            answers.append((label, r.status_code, statuses, r))
        for label, method, path, statuses in [("GET on the endpoint", "GET", endpoint, {405}), ("DELETE", "DELETE", endpoint, {405}),
                                              ("unknown path", "POST", "/v1/audio/speech", {404}), ("unknown model id", "GET", "/v1/models/nope", {404})]:
            r = c.request(method, path)
            answers.append((label, r.status_code, statuses, r))
        # Too large without a Content-Length (chunked): cut off while it streams in.
        part_head = b'--zz\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        chunks = (part_head if i < 0 else b"\0" * (1 << 20) for i in range(-1, int(LIMIT_MB) + 2))
        try:
            r = c.post(endpoint, content=chunks, headers={"content-type": "multipart/form-data; boundary=zz"})
            answers.append(("too large, chunked", r.status_code, {413}, r))
        except httpx.TransportError:  # the server may close before reading it all; what matters is that it lives
            pass
    wrong = [(label, code, r.text[:200]) for label, code, statuses, r in answers if code not in statuses]
    assert not wrong, wrong
    not_json = [(label, r.headers.get("content-type"), r.text[:100]) for label, _, _, r in answers if not r.headers.get("content-type", "").startswith("application/json")]
    assert not not_json, not_json
    for label, _, _, r in answers:
        assert r.json()["error"]["message"] and "Traceback" not in r.text, label
    # Clients that leave mid-upload: headers and part of a body, then the connection closes.
    head = (f"POST {endpoint} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
            f"Content-Length: {len(jfk) + 500}\r\n\r\n").encode()
    part = b'--zz\r\nContent-Disposition: form-data; name="file"; filename="jfk.flac"\r\n\r\n' + jfk[: len(jfk) // 2]
    for _ in range(3):
        _raw(url, head + part)
        _raw(url, head)
    # A Content-Length over the limit is refused before the body is read.
    big = head.replace(f"Content-Length: {len(jfk) + 500}".encode(), f"Content-Length: {10 * 1024 * 1024}".encode())
    assert _raw(url, big + part, answer=True).startswith(b"HTTP/1.1 413 ")
    assert len(answers) + 7 >= 36
    # Healthy afterwards: the right text, no upload left behind, nothing logged as an error.
    time.sleep(0.5)  # let the server notice the hang-ups
    with httpx.Client(base_url=url, timeout=120) as c:
        r = c.post(endpoint, files={"file": ("jfk.flac", jfk)}, data={"model": "whisper-1"})
        assert r.status_code == 200 and r.json()["text"] == JFK_TEXT
        assert c.get("/health").json()["queued_requests"] == 0
    assert list(served["uploads"].iterdir()) == []
    assert not [e.getMessage() for e in errors.records]


def test_error_messages_name_the_cause(served, tmp_path):
    with httpx.Client(base_url=served["url"], timeout=60) as c:
        r = c.post("/v1/audio/transcriptions", files={"file": ("notes.mp3", b"This is not an mp3, just text.\n" * 20)})
        assert r.status_code == 415 and r.json()["error"]["message"].startswith("notes.mp3: not an audio file") and r.json()["error"]["param"] == "file"
        r = c.post("/v1/audio/transcriptions", files={"file": ("empty.wav", b"")})
        assert r.status_code == 400 and r.json()["error"]["message"] == "empty.wav: empty file (0 bytes)"
        r = c.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"x")}, data={"temperature": "2"})
        assert r.status_code == 400 and "temperature" in r.json()["error"]["message"] and r.json()["error"]["param"] == "temperature"
        r = c.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"x")}, data={"response_format": "xml"})
        assert r.status_code == 400 and r.json()["error"]["message"].startswith("response_format:")


def test_full_queue_is_503_with_retry_after(served, audio_dir):
    batcher = served["app"].state.batcher
    for _ in range(batcher.max_queue):
        batcher.reserve()
    try:
        with httpx.Client(base_url=served["url"], timeout=60) as c:
            r = c.post("/v1/audio/transcriptions", files={"file": ("jfk.flac", (audio_dir / "jfk.flac").read_bytes())})
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1 and "queue full" in r.json()["error"]["message"]
    finally:
        for _ in range(batcher.max_queue):
            batcher.release()


def test_request_timeout_is_504(transcriber, audio_dir):
    app = create_app(transcriber, ServeSettings(request_timeout_s=0.001))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/v1/audio/transcriptions", files={"file": ("jfk.flac", (audio_dir / "jfk.flac").read_bytes())})
        assert r.status_code == 504 and "timed out" in r.json()["error"]["message"]
        assert c.get("/health").json()["batches"] == 0


# ---------------------------------------------------------------- the CLI server and SIGTERM


def test_cli_server_finishes_in_flight_requests_on_sigterm(tmp_path, audio_dir, model_dir, reference):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "whisper_ort.cli", "serve", "--port", str(port), "--onnx-dir", str(model_dir), "--threads", "2"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=5) as c:
            for _ in range(240):
                with contextlib.suppress(httpx.TransportError):
                    if c.get("/health").status_code == 200:
                        break
                assert proc.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.25)
        answer = {}

        def request():
            with httpx.Client(timeout=120) as c:
                r = c.post(f"{url}/v1/audio/transcriptions", files={"file": ("silero_test.wav", (audio_dir / "silero_test.wav").read_bytes())})
                answer["status"], answer["body"] = r.status_code, r.json()

        t = threading.Thread(target=request)
        t.start()
        in_flight = False
        with httpx.Client(base_url=url, timeout=5) as c:
            for _ in range(400):  # until the request is in the batcher's hands
                h = c.get("/health").json()
                if h["queued_requests"] or h["preparing"]:
                    in_flight = True
                    break
                time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert in_flight, "the request was never seen in flight"
        t.join(120)
        assert proc.wait(60) == 0
        assert answer["status"] == 200, answer
        assert answer["body"]["text"] == reference("silero_test.wav").text.strip()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=5)
        assert "Traceback" not in (tmp_path / "server.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        log.close()


# ---------------------------------------------------------------- the page, in headless Chromium

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_page_uploads_and_streams_in_chromium(served, audio_dir, reference, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    clip = "libri_198-209-0000.ogg"  # 14 s, five segments
    expected = reference(clip, timestamps=True)
    shot = Path(os.environ.get("WHISPER_ORT_SCREENSHOT", tmp_path / "serve_page.png"))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        try:
            page = browser.new_page(viewport={"width": 860, "height": 520})
            page.goto(served["url"] + "/")
            page.set_input_files("#file", str(audio_dir / clip))
            page.click("#go")
            page.wait_for_function("document.body.dataset.done", timeout=120_000)
            assert page.evaluate("document.body.dataset.done") == "1", page.inner_text("#status")
            rows = page.locator("#segments tr")
            assert rows.count() == len(expected.segments)
            assert rows.nth(0).locator("td.time").inner_text().startswith("0:00.00")
            assert page.inner_text("#text") == expected.text.strip()
            assert page.inner_text("#status").startswith(f"Done: {expected.duration_s:.1f} s of audio (en)")
            assert rows.nth(len(expected.segments) - 1).locator("td").nth(1).inner_text() == expected.segments[-1].text.strip()
            page.screenshot(path=str(shot))
            # The microphone (Chromium's fake device, a beep): recorded, sent as webm, answered.
            page.evaluate("delete document.body.dataset.done")
            page.click("#record")
            page.wait_for_function("document.getElementById('record').textContent === 'Stop'", timeout=10_000)
            page.wait_for_timeout(1500)
            page.click("#record")
            page.wait_for_function("document.body.dataset.done", timeout=120_000)
            assert page.evaluate("document.body.dataset.done") == "1", page.inner_text("#status")
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000


def test_stream_errors_before_the_stream_are_plain_4xx(served, tmp_path):
    silent = tmp_path / "silence.wav"
    import soundfile as sf

    sf.write(silent, tone(16000, 0.5) * 0, 16000)
    with httpx.Client(base_url=served["url"], timeout=60) as c:
        r = c.post("/v1/audio/transcriptions", files={"file": ("x.mp3", b"nope" * 100)}, data={"stream": "true"})
        assert r.status_code == 415 and r.headers["content-type"].startswith("application/json")
        r = c.post("/v1/audio/transcriptions", files={"file": ("silence.wav", silent.read_bytes())}, data={"stream": "true"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
        assert events[-1]["type"] == "transcript.text.done"


def test_vad_server_gives_no_text_for_silence_and_the_librarys_text_for_speech(vad_transcriber, audio_dir, tmp_path):
    """`serve --chunking vad`: the speech windows Silero finds, batched; a file without speech
    is answered at once with no text (no window to decode), not left to time out."""
    import soundfile as sf

    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(16000 * 5, np.float32), 16000)
    settings = ServeSettings(max_batch=8, batch_wait_ms=20, request_timeout_s=120, decoding=DecodingOptions(chunking="vad"))
    with running(create_app(vad_transcriber, settings)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)
        with open(silent, "rb") as f:
            quiet = client.audio.transcriptions.create(file=f, model="whisper-1", response_format="verbose_json")
        with open(audio_dir / "silero_test.wav", "rb") as f:
            speech = client.audio.transcriptions.create(file=f, model="whisper-1", response_format="verbose_json")
    assert quiet.text == "" and quiet.segments == [] and quiet.duration == pytest.approx(5.0)
    expected = vad_transcriber.transcribe(audio_dir / "silero_test.wav", chunking="vad", timestamps=True)
    assert speech.text == expected.text.strip() and len(expected.text) > 100
    assert [(s.start, s.end, s.text) for s in speech.segments] == [(s.start, s.end, s.text) for s in expected.segments]

"""The OpenAI-compatible HTTP API over one Transcriber and its Batcher.

    POST /v1/audio/transcriptions   file, model, language, prompt, response_format, temperature,
    POST /v1/audio/translations     timestamp_granularities[], stream (server-sent events)
    GET  /v1/models, /v1/models/{id}, /health, /  (the page), /docs, /openapi.json

A request's thread decodes the upload (a temporary file, always removed) and computes its
log-mel windows; the batcher thread runs the model. Every refusal is a 4xx in OpenAI's
error shape: bad fields 400, a body over the limit 413, a file that is not audio 415,
a full queue 503 with Retry-After, a request past its timeout 504.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal

import anyio
import numpy as np
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from whisper_ort.core.audio import SAMPLE_RATE, AudioError, load_audio
from whisper_ort.core.decoding import DecodingOptions
from whisper_ort.core.features import N_FRAMES, N_MELS, log_mel_batch
from whisper_ort.core.longform import split
from whisper_ort.core.pipeline import Transcriber
from whisper_ort.serve import errors, formats
from whisper_ort.serve.batcher import Batcher, Job, JobCancelled, QueueFull, ShuttingDown
from whisper_ort.serve.errors import ApiError

PAGE = Path(__file__).with_name("page.html")
MODEL_IDS = ("whisper-1", "whisper-base", "openai/whisper-base")  # whisper-1: what OpenAI clients send by default
FORM_SLACK = 64 * 1024  # the multipart overhead and text fields on top of the file


@dataclass(frozen=True)
class ServeSettings:
    max_batch: int = 8  # windows per encoder/decoder batch (1: one request at a time)
    batch_wait_ms: float = 100.0  # how long a batch may wait to fill (from its oldest request), while more are expected
    max_queue: int = 64  # requests admitted at once (queued + preparing + running); more get 503
    request_timeout_s: float = 300.0  # from arrival to the last byte of the answer
    max_upload_mb: float = 25.0  # OpenAI's limit
    prep_threads: int = 2  # requests decoding their audio at once
    upload_dir: str | None = None  # where uploads are written while decoded (default: the system's)
    decoding: DecodingOptions = field(default_factory=DecodingOptions)  # what a request's omitted fields mean

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def create_app(transcriber: Transcriber, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    batcher = Batcher(transcriber, settings.max_batch, settings.batch_wait_ms / 1000.0, settings.max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.prep_limiter = anyio.CapacityLimiter(max(1, settings.prep_threads))
        batcher.start()
        yield
        # uvicorn has waited for the requests in flight; nothing is left but to end the thread.
        await anyio.to_thread.run_sync(batcher.stop, 30.0)

    app = FastAPI(title="whisper-ort", version="0.1.0", lifespan=lifespan,
                  summary="OpenAI-compatible transcription of FP32 whisper-base on CPU, batched across requests")
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes + FORM_SLACK, max_mb=settings.max_upload_mb)
    app.state.batcher, app.state.settings, app.state.transcriber = batcher, settings, transcriber
    errors.install(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": MODEL_IDS[1], "variant": transcriber.variant, "max_batch": batcher.max_batch, **batcher.load()}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [_model(m) for m in MODEL_IDS]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        if model_id not in MODEL_IDS:
            raise ApiError(404, f"no model {model_id!r}; this server has {', '.join(MODEL_IDS)}", "model")
        return _model(model_id)

    async def audio_endpoint(task: str, request: Request, file: UploadFile, model: str, language: str | None, prompt: str | None,
                             response_format: str, temperature: float, granularities: list[str], stream: bool):
        arrival = time.monotonic()  # the timeout counts from here (the body is in)
        options = _options(transcriber, settings, task, model, language, prompt, response_format, temperature, granularities, stream)
        try:
            batcher.reserve()
        except QueueFull as exc:
            raise ApiError(503, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
        except ShuttingDown as exc:
            raise ApiError(503, str(exc), headers={"Retry-After": "5"}) from None
        try:
            windows, mel, duration_s = await anyio.to_thread.run_sync(_prepare, file, options, settings, transcriber, limiter=request.app.state.prep_limiter)
        except BaseException:
            batcher.release()
            raise
        finally:
            await file.close()
        left_s = settings.request_timeout_s - (time.monotonic() - arrival)
        if stream:
            return _stream(batcher, transcriber, windows, mel, duration_s, options, left_s, settings.request_timeout_s)
        job = Job(windows, mel, duration_s, options, left_s)
        result = await _wait(batcher, job, request, settings.request_timeout_s)
        per_window = _window_segments(transcriber, job) if response_format == "verbose_json" else []
        body, media = formats.render(result, response_format, task, per_window)
        return Response(body, media_type=media)

    # FastAPI documents the form fields in the OpenAPI schema from these signatures.
    @app.post("/v1/audio/transcriptions", dependencies=[Depends(_multipart)], responses=_RESPONSES)
    async def transcriptions(request: Request, file: AudioFile, model: ModelName = "whisper-1", language: Language = None,
                             prompt: Prompt = None, response_format: ResponseFormat = "json", temperature: Temperature = 0.0,
                             timestamp_granularities: Granularities = (), stream: Stream = False):
        return await audio_endpoint("transcribe", request, file, model, language, prompt, response_format, temperature, list(timestamp_granularities), stream)

    @app.post("/v1/audio/translations", dependencies=[Depends(_multipart)], responses=_RESPONSES)
    async def translations(request: Request, file: AudioFile, model: ModelName = "whisper-1", language: Language = None,
                           prompt: Prompt = None, response_format: ResponseFormat = "json", temperature: Temperature = 0.0,
                           timestamp_granularities: Granularities = (), stream: Stream = False):
        """English text from speech in any language Whisper knows."""
        return await audio_endpoint("translate", request, file, model, language, prompt, response_format, temperature, list(timestamp_granularities), stream)

    return app


# The OpenAI form fields, as FastAPI reads and documents them.
AudioFile = Annotated[UploadFile, File(description="the audio: any format libsndfile or FFmpeg reads (wav, flac, mp3, ogg, m4a, webm...)")]
ModelName = Annotated[str, Form(description=f"one of {', '.join(MODEL_IDS)} (all the same model)")]
Language = Annotated[str | None, Form(description="ISO-639-1 code of the speech (auto: detect); omitted: the server's --language")]
Prompt = Annotated[str | None, Form(description="text before each window's prompt (names, spelling, style), as openai/whisper's initial_prompt")]
ResponseFormat = Annotated[Literal["json", "text", "srt", "vtt", "verbose_json"], Form()]
Temperature = Annotated[float, Form(description="0: greedy (the server's setting); above 0, up to 1: sampled at that temperature")]
Granularities = Annotated[list[Literal["word", "segment"]], Form(alias="timestamp_granularities[]", description="segment, word (verbose_json: a words list with start and end)")]
Stream = Annotated[bool, Form(description="server-sent events: one transcript.text.delta per segment, then transcript.text.done")]

class BodyTooLarge(HTTPException):
    def __init__(self, max_mb: float):
        super().__init__(413, f"request body too large (limit {max_mb:g} MB)")


class BodyLimit:
    """413 in our JSON shape: at once for a Content-Length over the limit (the body is never
    read), or from the read that crosses it for a body sent without one (chunked)."""

    def __init__(self, app, max_bytes: int, max_mb: float):
        self.app, self.max_bytes, self.max_mb = app, max_bytes, max_mb

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers", ())).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            response = errors.error_response(413, f"request body too large: {int(length)} bytes (limit {self.max_mb:g} MB)")
            return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_mb)
            return message

        await self.app(scope, limited, send)


_RESPONSES = {code: {"description": why} for code, why in (
    (400, "a bad field, empty or damaged audio"), (413, "body over the upload limit"), (415, "not audio, or not multipart/form-data"),
    (503, "queue full (Retry-After) or shutting down"), (504, "the request timed out"))}


def _model(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "whisper-ort"}


async def _multipart(request: Request) -> None:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        raise ApiError(415, f"send the request as multipart/form-data, not {kind or 'no content type'}")


def _options(transcriber, settings, task, model, language, prompt, response_format, temperature, granularities, stream) -> DecodingOptions:
    """The request's fields as DecodingOptions over the server's defaults, or a 400 naming the field."""
    if model not in MODEL_IDS:
        raise ApiError(400, f"unknown model {model!r}; this server has {', '.join(MODEL_IDS)}", "model")
    if not 0 <= temperature <= 1:
        raise ApiError(400, f"temperature must be between 0 and 1, not {temperature:g}", "temperature")
    words = "word" in granularities
    if words:
        try:
            transcriber.sessions.check_alignment()
        except Exception as exc:  # a model folder built before word timestamps
            raise ApiError(400, f"word timestamps are not available on this server's model folder: {exc}", "timestamp_granularities[]") from None
    lang = settings.decoding.language
    if language is not None and language.strip():
        lang = language.strip().lower()
        lang = None if lang == "auto" else lang
        if lang is not None:
            try:
                transcriber.tokenizer.language_id(lang)
            except ValueError:
                raise ApiError(400, f"unknown language {language!r}: give an ISO-639-1 code such as en, fr, de, or omit it", "language") from None
    timestamps = stream or response_format in ("srt", "vtt", "verbose_json") or "segment" in granularities or words
    # temperature above 0: sampled at it; 0: the server's own setting (greedy by default)
    sampling = {"temperature": float(temperature)} if temperature > 0 else {}
    return replace(settings.decoding, task=task, language=lang, timestamps=timestamps, word_timestamps=words or settings.decoding.word_timestamps,
                   initial_prompt=prompt.strip() if prompt and prompt.strip() else settings.decoding.initial_prompt, **sampling)


def _prepare(upload: UploadFile, options: DecodingOptions, settings: ServeSettings, transcriber: Transcriber):
    """Upload -> temporary file -> samples -> windows and their log-mel rows (in a worker thread)."""
    name = upload.filename or "upload"
    suffix = Path(name).suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", Path(name).suffix) else ""
    fd, path = tempfile.mkstemp(prefix="whisper-ort-upload-", suffix=suffix, dir=settings.upload_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            upload.file.seek(0)
            shutil.copyfileobj(upload.file, out, 1 << 20)
        try:
            samples = load_audio(path)
        except AudioError as exc:
            not_audio = exc.cause.startswith("not an audio file") or exc.cause == "no audio stream"
            raise ApiError(415 if not_audio else 400, f"{name}: {exc.cause}", "file") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    pieces = split(samples, chunking=options.chunking, vad=transcriber.speech_spans)
    mel = log_mel_batch([p for _, p in pieces]) if pieces else np.zeros((0, N_MELS, N_FRAMES), np.float32)  # vad: maybe no speech
    return [w for w, _ in pieces], mel, len(samples) / SAMPLE_RATE


async def _wait(batcher: Batcher, job: Job, request: Request, timeout_s: float):
    """The job's Transcription; 504 past the deadline; the job dropped if the client leaves."""
    done = asyncio.wrap_future(batcher.submit(job))
    while True:
        left = job.deadline - time.monotonic()
        if left <= 0:
            batcher.cancel(job)
            raise ApiError(504, f"request timed out after {timeout_s:g} s")
        finished, _ = await asyncio.wait({done}, timeout=min(0.5, left))
        if finished:
            try:
                return done.result()
            except JobCancelled as exc:
                raise ApiError(504, f"request {exc} (timeout {timeout_s:g} s)") from None
            except ShuttingDown as exc:
                raise ApiError(503, str(exc), headers={"Retry-After": "5"}) from None
        if await request.is_disconnected():
            batcher.cancel(job)
            raise ApiError(499, "client closed the connection")


def _window_segments(transcriber: Transcriber, job: Job) -> list[tuple[int, list]]:
    """(seek, segments) of each window: a window's own segments, as the stream sends them."""
    return [(w.start // formats.HOP, transcriber.assemble([(w, r)], job.duration_s, job.options).segments)
            for w, r in zip(job.windows, job.results)]


def _stream(batcher, transcriber, windows, mel, duration_s, options, left_s: float, timeout_s: float) -> StreamingResponse:
    """Server-sent events: one transcript.text.delta per segment as its window finishes, then transcript.text.done."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    end = object()

    def on_window(i, window, result):  # the batcher thread: hand over to the event loop
        loop.call_soon_threadsafe(queue.put_nowait, (window, result))

    job = Job(windows, mel, duration_s, options, left_s, on_window=on_window)
    future = batcher.submit(job)
    future.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, end))

    async def events():
        n = 0
        try:
            while True:
                left = job.deadline - time.monotonic()
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=max(0.0, left))
                except asyncio.TimeoutError:
                    yield formats.sse({"type": "error", "error": errors.error_body(504, f"request timed out after {timeout_s:g} s")["error"]})
                    return
                if item is end:
                    break
                window, result = item
                for seg in transcriber.assemble([(window, result)], duration_s, job.options).segments:
                    yield formats.sse(formats.delta_event(n, seg, window.start // formats.HOP))
                    n += 1
            try:
                yield formats.sse(formats.done_event(future.result()))
            except Exception as exc:  # cancelled, timed out, or a failed batch
                yield formats.sse({"type": "error", "error": errors.error_body(504 if isinstance(exc, JobCancelled) else 500, str(exc))["error"]})
        finally:
            if not future.done():
                batcher.cancel(job)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

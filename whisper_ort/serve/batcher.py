"""One thread owns the Transcriber; windows of concurrent requests share its batches.

A request becomes a Job: its 30 s windows as log-mel rows, computed by the request's own
thread. The batcher thread takes up to `max_batch` windows of pending jobs that share one
DecodingOptions (the oldest job's), round robin over those jobs so that a long file does
not hold back short ones, runs one encoder batch and one decoder batch over them
(Transcriber.decode_windows: finished rows leave the decoder's K/V batch), and hands each
job its results. A job's windows are reported in order as they finish (streaming) and the
job is assembled when the last one is in.

Rows do not join a decoder batch mid-loop: the self-attention K/V of every row in a batch
has one length, so a new row waits for the next batch. The wait for a batch to fill is
bounded (`max_wait_s` from the oldest waiting job's arrival, or from the end of the last
batch if that came later) and only taken while some request is still being prepared (its
audio decoded) or fewer requests wait than were active in the last batch (its own and those
that came while it ran): a lone client never waits, and closed-loop clients that send again
together share a batch instead of splitting into a small one and a large one for good.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

import numpy as np

from whisper_ort.core.audio import SAMPLE_RATE
from whisper_ort.core.decoding import DecodeResult, DecodingOptions
from whisper_ort.core.longform import Window
from whisper_ort.core.pipeline import Transcriber, Transcription, is_long


class QueueFull(Exception):
    """The bounded queue has no room: answer 503 with Retry-After."""

    def __init__(self, retry_after_s: int):
        super().__init__(f"server busy: queue full, retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class ShuttingDown(Exception):
    """The server is draining: no new work."""


class JobCancelled(Exception):
    """The client went away or the request timed out; its windows are not decoded."""


def batch_key(options: DecodingOptions) -> DecodingOptions:
    """Options that decode the same way batch together (batch_size changes no token)."""
    return replace(options, batch_size=1)


class Job:
    """One request's windows, their results as they come, and the Future of its Transcription."""

    def __init__(self, windows: list[Window], mel: np.ndarray, duration_s: float, options: DecodingOptions,
                 timeout_s: float, on_window: Callable[[int, Window, DecodeResult], None] | None = None):
        self.windows = windows
        self.mel = mel
        self.duration_s = duration_s
        self.options = batch_key(options)
        self.deadline = time.monotonic() + timeout_s
        self.on_window = on_window
        self.results: list[DecodeResult | None] = [None] * len(windows)
        self.scheduled = 0  # windows handed to a batch so far (in order)
        self.reported = 0  # windows passed to on_window so far (in order)
        self.future: Future[Transcription] = Future()
        self.submitted = time.monotonic()  # reset by Batcher.submit
        self.cancelled = False

    @property
    def waiting(self) -> int:
        return len(self.windows) - self.scheduled


class Batcher:
    """The batching thread. submit() from any thread; results arrive on each Job's Future."""

    def __init__(self, transcriber: Transcriber, max_batch: int = 8, max_wait_s: float = 0.05, max_queue: int = 64):
        self.transcriber = transcriber
        self.max_batch = max(1, int(max_batch))
        self.max_wait_s = max(0.0, float(max_wait_s))
        self.max_queue = max(1, int(max_queue))
        self._jobs: list[Job] = []  # admitted and not finished, in arrival order
        self._preparing = 0  # admitted requests still decoding their audio
        self._last_jobs = 1  # requests active in the last batch: how many to wait for in the next
        self._free_since = 0.0  # when the last batch ended: a wait for the next one counts from here
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="whisper-ort-batcher", daemon=True)
        # What /health reports: batches run, windows decoded, rows per batch, seconds per batch.
        self.stats = {"batches": 0, "windows": 0, "requests": 0, "failed_batches": 0, "max_rows": 0, "mean_batch_s": 0.0}

    # -- the request side

    def start(self) -> None:
        self._thread.start()

    def reserve(self) -> None:
        """Admit one request before its audio is read (raises QueueFull / ShuttingDown);
        follow with submit() or release()."""
        with self._cond:
            if self._stopping:
                raise ShuttingDown("server is shutting down")
            if len(self._jobs) + self._preparing >= self.max_queue:
                raise QueueFull(self.retry_after_s())
            self._preparing += 1

    def release(self) -> None:
        """A reserved request that will not submit (bad audio)."""
        with self._cond:
            self._preparing -= 1
            self._cond.notify_all()

    def submit(self, job: Job) -> Future:
        """Queue a reserved request's job."""
        with self._cond:
            self._preparing -= 1
            if self._stopping and not self._thread.is_alive():
                job.future.set_exception(ShuttingDown("server is shutting down"))
                return job.future
            job.submitted = time.monotonic()
            self.stats["requests"] += 1
            if not job.windows:  # vad found no speech: nothing to decode, the empty transcript at once
                self._report(job)
                return job.future
            self._jobs.append(job)
            self._cond.notify_all()
        return job.future

    def cancel(self, job: Job) -> None:
        """Drop a job's remaining windows (client gone, timed out); a batch already running finishes."""
        with self._cond:
            job.cancelled = True
            self._cond.notify_all()

    def retry_after_s(self) -> int:
        """Seconds until the queue is likely to have room: the waiting windows at the measured batch rate."""
        waiting = sum(j.waiting for j in self._jobs)
        per_batch = self.stats["mean_batch_s"] or 1.0
        return max(1, math.ceil(per_batch * max(1, waiting) / self.max_batch))

    def load(self) -> dict:
        with self._cond:
            return {"queued_requests": len(self._jobs), "preparing": self._preparing,
                    "waiting_windows": sum(j.waiting for j in self._jobs), **self.stats}

    def stop(self, timeout_s: float | None = None) -> None:
        """Finish every queued job, then end the thread (graceful shutdown)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    # -- the batching thread

    def _run(self) -> None:
        while True:
            picked = self._next_batch()
            if picked is None:
                return
            options, rows = picked
            start = time.perf_counter()
            try:
                mel = np.stack([job.mel[i] for job, i in rows])
                results = self.transcriber.decode_windows(mel, options, [job.windows[i].n_samples for job, i in rows],
                                                          [is_long(round(job.duration_s * SAMPLE_RATE)) for job, _ in rows])
            except Exception as exc:  # an ONNX Runtime failure fails these jobs, not the server
                self.stats["failed_batches"] += 1
                for job in {id(j): j for j, _ in rows}.values():
                    self._finish(job, exc=exc)
                continue
            elapsed = time.perf_counter() - start
            n = self.stats["batches"]
            self.stats.update(batches=n + 1, windows=self.stats["windows"] + len(rows), max_rows=max(self.stats["max_rows"], len(rows)),
                              mean_batch_s=(self.stats["mean_batch_s"] * n + elapsed) / (n + 1))
            for (job, i), result in zip(rows, results):
                job.results[i] = result
            for job in {id(j): j for j, _ in rows}.values():
                self._report(job)
            with self._cond:
                # The next batch waits (bounded) for the requests of this one and those that came
                # while it ran: without the second, 8 closed-loop clients settle into batches of
                # 1 and 7 (measured: 2-3 rows per batch on average instead of 8).
                active = {id(j) for j, _ in rows} | {id(j) for j in self._jobs if j.waiting}
                self._last_jobs = min(self.max_batch, len(active))
                self._free_since = time.monotonic()

    def _next_batch(self) -> tuple[DecodingOptions, list[tuple[Job, int]]] | None:
        with self._cond:
            while True:
                self._drop_expired()
                pending = [j for j in self._jobs if j.waiting]
                if not pending:
                    if self._stopping and not self._preparing:
                        return None
                    self._cond.wait(0.5)
                    continue
                options = pending[0].options
                # The bounded wait (at most max_wait_s after the oldest job came, or after the last
                # batch ended): more windows of these options may be on their way, from requests
                # being prepared, or from as many clients as the last batch had active
                # (closed-loop clients send again together).
                oldest = min(j.submitted for j in pending if j.options == options)
                until = max(oldest, self._free_since) + self.max_wait_s
                while not self._stopping:
                    same = [j for j in self._jobs if j.waiting and j.options == options]
                    if sum(j.waiting for j in same) >= self.max_batch or (not self._preparing and len(same) >= self._last_jobs):
                        break
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                self._drop_expired()
                group = [j for j in self._jobs if j.waiting and j.options == options]
                rows: list[tuple[Job, int]] = []
                while len(rows) < self.max_batch and any(j.waiting for j in group):
                    for job in group:  # round robin: one window of each job per turn
                        if job.waiting and len(rows) < self.max_batch:
                            rows.append((job, job.scheduled))
                            job.scheduled += 1
                if rows:  # else every candidate expired during the wait: look again
                    return options, rows

    def _drop_expired(self) -> None:
        """Cancelled and timed-out jobs leave the queue with an exception (caller holds the lock)."""
        now = time.monotonic()
        for job in [j for j in self._jobs if j.cancelled or now > j.deadline]:
            self._jobs.remove(job)
            if not job.future.done():
                job.future.set_exception(JobCancelled("cancelled" if job.cancelled else "timed out in the queue"))

    def _report(self, job: Job) -> None:
        """Pass finished windows on in order; assemble the job when its last window is in."""
        while job.reported < len(job.windows) and job.results[job.reported] is not None:
            if job.on_window is not None and not job.cancelled:
                try:
                    job.on_window(job.reported, job.windows[job.reported], job.results[job.reported])
                except Exception:  # a stream whose loop is gone: the job still completes
                    job.on_window = None
            job.reported += 1
        if job.reported == len(job.windows):
            try:
                pairs = list(zip(job.windows, job.results))
                self._finish(job, result=self.transcriber.assemble(pairs, job.duration_s, job.options))
            except Exception as exc:
                self._finish(job, exc=exc)

    def _finish(self, job: Job, result: Transcription | None = None, exc: BaseException | None = None) -> None:
        with self._cond:
            if job in self._jobs:
                self._jobs.remove(job)
            self._cond.notify_all()
        if job.future.done():
            return
        if exc is not None:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)

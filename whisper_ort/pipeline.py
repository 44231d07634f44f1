"""Transcriber: audio -> log-mel -> encoder -> decoder -> text, with the time of every stage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE, AudioError, load_audio
from .decoding import DecodingOptions, GreedyDecoder
from .features import log_mel_batch
from .longform import CHUNKINGS, join_text_tokens, split, stitch_text_tokens
from .model import SessionConfig, WhisperSessions
from .optimize import resolve_variant, variant_dir
from .records import Record
from .tokenizer import TIME_PRECISION, WhisperTokenizer

STAGES = ("t_load_audio", "t_features", "t_encoder", "t_decoder_first", "t_decoder_loop", "t_detokenize", "t_total")


@dataclass
class Segment:
    start: float  # seconds from the start of the file
    end: float
    text: str
    tokens: list[int] = field(default_factory=list)


@dataclass
class Transcription:
    text: str
    segments: list[Segment]
    tokens: list[int]
    language: str
    duration_s: float
    timings: dict  # seconds per stage, keys of STAGES
    n_windows: int = 1
    flags: list[str] = field(default_factory=list)
    loop_overhead_pct: float | None = None


class Transcriber:
    """Sessions and tokenizer built once; `transcribe` reuses them for every file.

    >>> Transcriber("whisper-base-with-past", threads=2).transcribe("audio/jfk.flac").text
    """

    def __init__(
        self,
        model_dir: str | Path = "whisper-base-with-past",
        threads: int = 2,
        inter_threads: int = 1,
        graph_opt: str = "all",
        execution_mode: str = "sequential",
        language: str | None = "en",
        task: str = "transcribe",
        timestamps: bool = False,
        max_new_tokens: int = 128,
        batch_size: int = 1,
        chunking: str = "strided",
        variant: str = "auto",
        tokenizer_json: str | Path | None = None,
        options: DecodingOptions | None = None,
        spinning: bool = True,
        prepacking: bool = True,
        arena: bool = True,
        mem_pattern: bool = True,
        shared_pool: bool = False,
        shared_arena: bool = False,
        full_logits: bool = False,
    ):
        if chunking not in CHUNKINGS:
            raise ValueError(f"chunking must be one of {CHUNKINGS}, not {chunking!r}")
        variant = resolve_variant(model_dir, variant)
        self.model_dir = variant_dir(Path(model_dir), variant)
        self.session_config = SessionConfig(threads=threads, inter_threads=inter_threads, graph_opt=graph_opt, execution_mode=execution_mode,
                                            spinning=spinning, prepacking=prepacking, arena=arena, mem_pattern=mem_pattern,
                                            shared_pool=shared_pool, shared_arena=shared_arena)
        t0 = time.perf_counter()
        self.sessions = WhisperSessions(self.model_dir, self.session_config)
        gen = self.sessions.configs["generation_config.json"]
        tok_path = Path(tokenizer_json) if tokenizer_json else self.model_dir / "tokenizer.json"
        self.tokenizer = WhisperTokenizer(tok_path, gen, self.sessions.vocab_size)
        self.options = options or DecodingOptions(language=language, task=task, timestamps=timestamps, max_new_tokens=max_new_tokens, full_logits=full_logits)
        self.decoder = GreedyDecoder(self.sessions, self.tokenizer, self.options)
        self.batch_size = max(1, int(batch_size))
        self.chunking = chunking
        self.variant = variant
        self.threads = threads
        self.load_time_s = time.perf_counter() - t0

    def settings(self) -> dict:
        """What the summary records about this transcriber."""
        return {
            "model_dir": str(self.model_dir),
            "variant": self.variant,
            "session": self.session_config.to_dict(),
            "decoding": {k: getattr(self.options, k) for k in self.options.__dataclass_fields__},
            "batch_size": self.batch_size,
            "chunking": self.chunking,
            "load_time_s": self.load_time_s,
        }

    def transcribe(self, audio: str | Path | np.ndarray) -> Transcription:
        timings = dict.fromkeys(STAGES, 0.0)
        in_ort = 0.0
        start = time.perf_counter()
        if isinstance(audio, np.ndarray):
            samples = np.ascontiguousarray(audio, dtype=np.float32)
        else:
            samples = load_audio(audio)
        timings["t_load_audio"] = time.perf_counter() - start
        if samples.size == 0:
            raise AudioError(str(audio), "no samples")

        pieces = split(samples, chunking=self.chunking)
        window_results = []
        for i in range(0, len(pieces), self.batch_size):
            batch = pieces[i : i + self.batch_size]
            t = time.perf_counter()
            mel = log_mel_batch([p for _, p in batch])
            timings["t_features"] += time.perf_counter() - t
            t = time.perf_counter()
            states = self.sessions.encode(mel)
            timings["t_encoder"] += time.perf_counter() - t
            results = self.decoder.decode(states)
            for (window, _), result in zip(batch, results):
                timings["t_decoder_first"] += result.t_decoder_first * len(batch)
                timings["t_decoder_loop"] += result.t_decoder_loop * len(batch)
                in_ort += result.t_loop_in_ort * len(batch)
                window_results.append((window, result))
        # decode() spreads a batch's time over its rows; the sums above restore batch totals.
        timings["t_decoder_first"] /= max(1, min(self.batch_size, len(pieces)))
        timings["t_decoder_loop"] /= max(1, min(self.batch_size, len(pieces)))
        in_ort /= max(1, min(self.batch_size, len(pieces)))

        t = time.perf_counter()
        transcription = self._assemble(window_results, len(samples) / SAMPLE_RATE)
        timings["t_detokenize"] = time.perf_counter() - t
        timings["t_total"] = time.perf_counter() - start
        transcription.timings = timings
        # Python's share of the token loop: time outside session.run (goal: <= 3 %).
        loop = timings["t_decoder_loop"]
        transcription.loop_overhead_pct = 100.0 * (loop - in_ort) / loop if loop > 0 else None
        return transcription

    def _assemble(self, window_results, duration_s: float) -> Transcription:
        tok = self.tokenizer
        flags = sorted({f for _, r in window_results for f in r.flags})
        overlapping = any(w.stride_left or w.stride_right for w, _ in window_results)  # strided: stitch; silence: join
        language = window_results[0][1].language
        if not self.options.timestamps:
            if not overlapping:  # one window, or silence-cut windows
                tokens = join_text_tokens([r.tokens for _, r in window_results], tok.ids.eot)
            else:
                tokens = stitch_text_tokens([r.tokens for _, r in window_results], tok.ids.eot)
            text = tok.decode(tokens)
            return Transcription(text, [Segment(0.0, duration_s, text, tokens)], tokens, language, duration_s, {}, len(window_results), flags)

        segments, tokens = [], []
        for window, result in window_results:
            offset = window.start / SAMPLE_RATE
            own_from = window.stride_left / SAMPLE_RATE
            own_to = (window.stop - window.start - window.stride_right) / SAMPLE_RATE
            for seg in timestamp_segments(result.tokens, tok, (window.stop - window.start) / SAMPLE_RATE):
                # Overlapping windows: keep a segment only in the window whose own span holds its start.
                if overlapping and not (own_from <= seg.start < own_to):
                    continue
                segments.append(Segment(round(seg.start + offset, 2), round(seg.end + offset, 2), seg.text, seg.tokens))
                tokens.extend(seg.tokens)
        if len(window_results) == 1:  # one window: every token, timestamps included
            tokens = [t for t in window_results[0][1].tokens if t != tok.ids.eot]
        text = "".join(s.text for s in segments)
        return Transcription(text, segments, tokens, language, duration_s, {}, len(window_results), flags)

    def transcribe_record(self, path: str | Path, repeat: int = 0) -> Record:
        """One benchmark record; a bad file becomes status=error with a one-line cause."""
        record = Record(file=Path(path).name, implementation="whisper_ort", variant=self.variant, threads=self.threads, repeat=repeat)
        try:
            result = self.transcribe(path)
        except AudioError as exc:
            record.status, record.error = "error", str(exc)
            return record
        record.duration_s = result.duration_s
        record.text = result.text.strip()
        record.n_tokens = len(result.tokens)
        record.language = result.language
        record.n_windows = result.n_windows
        record.flags = list(result.flags)
        record.loop_overhead_pct = result.loop_overhead_pct
        for name in STAGES:
            setattr(record, name, result.timings[name])
        return record.finish()

    def with_options(self, **changes) -> Transcriber:
        """A transcriber sharing these sessions with other decoding options."""
        other = object.__new__(Transcriber)
        other.__dict__.update(self.__dict__)
        other.options = replace(self.options, **changes)
        other.decoder = GreedyDecoder(self.sessions, self.tokenizer, other.options)
        return other


def timestamp_segments(tokens: list[int], tokenizer: WhisperTokenizer, window_s: float) -> list[Segment]:
    """Segments from <|t0|> text <|t1|> pairs; text after the last stamp ends at the window's end."""
    begin, eot = tokenizer.ids.timestamp_begin, tokenizer.ids.eot
    segments, run, start = [], [], None
    for t in tokens:
        if t >= begin:
            stamp = (t - begin) * TIME_PRECISION
            if start is None:
                start = stamp
            else:
                if run:
                    segments.append(Segment(start, stamp, tokenizer.decode(run), run))
                start, run = (None, []) if run else (stamp, [])
        elif t < eot:
            if start is None:
                start = segments[-1].end if segments else 0.0
            run.append(t)
    if run:
        segments.append(Segment(start if start is not None else 0.0, window_s, tokenizer.decode(run), run))
    return segments

"""Transcriber: audio -> log-mel -> encoder -> decoder -> text, with the time of every stage.

Model-level settings (folder, variant, ONNX Runtime options) are fixed at construction as
one ModelOptions; decoding settings (language, task, timestamps, long-audio windows...)
are per call, so one loaded model serves English and French files alike:

    >>> t = Transcriber(threads=2)
    >>> t.transcribe("audio/jfk.flac").text
    >>> t.transcribe("audio/fr.wav", language="fr", timestamps=True).segments
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from whisper_ort.core.audio import SAMPLE_RATE, AudioError, load_audio
from whisper_ort.core.beam import BeamDecoder, check_beam_options
from whisper_ort.core.decoders import open_sessions
from whisper_ort.core.decoding import MAX_POSITIONS, DecodeResult, DecodingOptions, GreedyDecoder, compression_ratio
from whisper_ort.core.features import CHUNK_SAMPLES, log_mel_batch
from whisper_ort.core.folder import default_model_dir, resolve_variant, variant_dir
from whisper_ort.core.longform import (
    CHUNKINGS,
    TAIL_TOLERANCE,
    Window,
    file_time,
    join_text_tokens,
    split,
    stitch_text_tokens,
)
from whisper_ort.core.options import ModelOptions
from whisper_ort.core.sequential import _temperatures, decode_best, transcribe_sequential
from whisper_ort.core.timing import audio_frames, words_of_window
from whisper_ort.core.tokenizer import TIME_PRECISION, WhisperTokenizer
from whisper_ort.core.vad import VAD_FILE, SileroVad

STAGES = ("t_load_audio", "t_features", "t_encoder", "t_decoder_first", "t_decoder_loop", "t_detokenize", "t_total")


@dataclass
class Word:
    word: str  # with its leading space and the punctuation merged into it
    start: float  # seconds from the start of the file
    end: float
    probability: float


@dataclass
class Segment:
    start: float  # seconds from the start of the file
    end: float
    text: str
    tokens: list[int] = field(default_factory=list)
    # openai/whisper's segment fields (json output); None where the decoding did not compute them
    id: int = 0
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None
    temperature: float | None = None
    words: list[Word] | None = None  # word_timestamps=True


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
    language_probs: dict[str, float] | None = None  # language detected: code -> probability


class Transcriber:
    """Sessions and tokenizer built once; `transcribe` reuses them for every file and call.

    Transcriber()                                  the default folder, ModelOptions()
    Transcriber("path/to/whisper-base-with-past", threads=4, variant="export")
    Transcriber(options=ModelOptions(...))
    """

    def __init__(self, folder: str | Path | None = None, options: ModelOptions | None = None, **overrides):
        options = options or ModelOptions()
        if folder is not None:
            overrides["folder"] = folder
        options = options.with_overrides(**overrides) if overrides else options
        base = Path(options.folder) if options.folder is not None else default_model_dir()
        self.options = options
        self.variant = resolve_variant(base, options.variant)
        self.model_dir = variant_dir(base, self.variant)
        self.base_dir = base
        self._vad: SileroVad | None = None  # loaded on the first chunking="vad"
        self.threads = options.session.threads
        t0 = time.perf_counter()
        self.sessions = open_sessions(self.model_dir, options.session)
        gen = self.sessions.configs["generation_config.json"]
        tok_path = Path(options.tokenizer_json) if options.tokenizer_json else self.model_dir / "tokenizer.json"
        self.tokenizer = WhisperTokenizer(tok_path, gen, self.sessions.vocab_size, bytes_table=not options.tokenizer_json)
        self._decoders: dict[DecodingOptions, GreedyDecoder] = {}
        self.load_time_s = time.perf_counter() - t0

    def settings(self, decoding: DecodingOptions | None = None) -> dict:
        """What a summary records about this transcriber (and the decoding options of a run)."""
        out = {
            "model_dir": str(self.model_dir),
            "variant": self.variant,
            "session": self.options.session.to_dict(),
            "load_time_s": self.load_time_s,
        }
        if decoding is not None:
            out["decoding"] = {k: getattr(decoding, k) for k in decoding.__dataclass_fields__}
        return out

    def decoder(self, options: DecodingOptions) -> GreedyDecoder:
        """The decoder for these options, built once (its masks and filters) and kept."""
        check_beam_options(options)  # before the cache: beam_size=True equals (and hashes as) 1
        if options not in self._decoders:
            self._decoders[options] = _decoder_class(options)(self.sessions, self.tokenizer, options)
        return self._decoders[options]

    def transcribe(self, audio: str | Path | np.ndarray, options: DecodingOptions | None = None, **changes) -> Transcription:
        """Transcribe a file (any format audio.load_audio reads) or 16 kHz mono samples.

        Decoding settings as DecodingOptions fields, given as `options`, or changed one by
        one: transcribe(path, language="fr", timestamps=True, chunking="silence")."""
        options = options or DecodingOptions()
        if changes:
            options = replace(options, **changes)
        if options.chunking not in CHUNKINGS:
            raise ValueError(f"chunking must be one of {CHUNKINGS}, not {options.chunking!r}")
        options = self._word_options(options)
        decoder = self.decoder(options)  # built, and its options checked, before any audio is read
        batch_size = max(1, int(options.batch_size))
        if isinstance(decoder, GreedyDecoder) and options.chunking != "sequential" and decoder.speculates(temperature=_temperatures(options)[0]):
            self.sessions.prefetch_draft()  # loads while the audio is decoded and encoded
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

        if options.chunking == "sequential" and len(samples) > CHUNK_SAMPLES + TAIL_TOLERANCE:
            return self._transcribe_sequential(samples, options, timings, start)
        pieces = split(samples, chunking="strided" if options.chunking == "sequential" else options.chunking, vad=self.speech_spans)
        if not pieces:  # vad: no speech at all, nothing decoded
            return self._no_speech(len(samples), options, timings, start)
        rng = np.random.default_rng(options.seed)
        window_results = []
        for i in range(0, len(pieces), batch_size):
            batch = pieces[i : i + batch_size]
            t = time.perf_counter()
            mel = log_mel_batch([p for _, p in batch])
            timings["t_features"] += time.perf_counter() - t
            t = time.perf_counter()
            states = self.sessions.encode(mel)
            timings["t_encoder"] += time.perf_counter() - t
            results = self._decode_states(states, options, rng, [len(p) for _, p in batch], [is_long(len(samples))] * len(batch))
            for (window, _), result in zip(batch, results):
                timings["t_decoder_first"] += result.t_decoder_first * len(batch)
                timings["t_decoder_loop"] += result.t_decoder_loop * len(batch)
                in_ort += result.t_loop_in_ort * len(batch)
                window_results.append((window, result))
        # decode() spreads a batch's time over its rows; the sums above restore batch totals.
        rows = max(1, min(batch_size, len(pieces)))
        timings["t_decoder_first"] /= rows
        timings["t_decoder_loop"] /= rows
        in_ort /= rows

        t = time.perf_counter()
        transcription = self._assemble(window_results, len(samples) / SAMPLE_RATE, options)
        timings["t_detokenize"] = time.perf_counter() - t
        timings["t_total"] = time.perf_counter() - start
        transcription.timings = timings
        # Python's share of the token loop: time outside session.run (goal: <= 3 %).
        loop = timings["t_decoder_loop"]
        transcription.loop_overhead_pct = 100.0 * (loop - in_ort) / loop if loop > 0 else None
        return transcription

    def _transcribe_sequential(self, samples: np.ndarray, options: DecodingOptions, timings: dict, start: float) -> Transcription:
        """Audio over 30 s walked window by window with timestamps (core/sequential.py)."""
        result = transcribe_sequential(self, samples, replace(options, timestamps=True))
        for key, value in result.timings.items():
            timings[key] += value
        t = time.perf_counter()
        tok = self.tokenizer
        segments = [Segment(round(s.start, 2), round(s.end, 2), tok.decode(s.tokens), [x for x in s.tokens if x < tok.ids.eot],
                            words=None if s.words is None else _words(s.words, None),
                            avg_logprob=s.avg_logprob, compression_ratio=s.compression_ratio, no_speech_prob=s.no_speech_prob, temperature=s.temperature)
                    for s in result.segments if any(x < tok.ids.eot for x in s.tokens)]
        number_segments(segments)
        tokens = [x for s in result.segments for x in s.tokens]
        text = "".join(s.text for s in segments)
        timings["t_detokenize"] = time.perf_counter() - t
        timings["t_total"] = time.perf_counter() - start
        loop = timings["t_decoder_loop"]
        overhead = 100.0 * (loop - result.in_ort) / loop if loop > 0 else None
        return Transcription(text, segments, tokens, result.language, len(samples) / SAMPLE_RATE, timings, result.n_windows, result.flags, overhead,
                             language_probs=result.language_probs)

    def speech_spans(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """Silero VAD's speech spans (core/vad.py), from the model folder's silero file (the
        variant's folder, else the export beside it); loaded once."""
        if self._vad is None:
            found = [d / VAD_FILE for d in (self.model_dir, self.base_dir) if (d / VAD_FILE).is_file()]
            self._vad = SileroVad(found[0] if found else self.base_dir / VAD_FILE)  # none: the error names the file
        return self._vad.speech(samples)

    def _decode_speech(self, states, options: DecodingOptions, prefix: list[int] | None = None,
                       n_samples: list[int] | None = None) -> list[DecodeResult]:
        """vad windows: decoded, then openai/whisper's no-speech rule, so a window the VAD took
        for speech gives no text when Whisper finds none: no-speech probability above
        no_speech_threshold, unless the average log-probability is above logprob_threshold.
        Only rows over the no-speech threshold are decoded again for their log-probabilities
        (every logit each step): speech rarely is, and its windows keep the fast path.
        n_samples: the windows' audio lengths (the speculative draft's frames)."""
        decoder = self.decoder(options)
        threshold = options.no_speech_threshold
        results = decoder.decode(states, prefix=prefix, with_no_speech=threshold is not None, n_samples=n_samples)
        suspect = [i for i, r in enumerate(results) if threshold is not None and r.no_speech_prob > threshold]
        if suspect and options.logprob_threshold is not None:
            again = decode_rows_again(decoder, states, suspect, results, prefix=prefix, with_logprobs=True)  # the same tokens: greedy on every logit
            for i, r in zip(suspect, again):
                results[i] = replace(results[i], avg_logprob=r.avg_logprob, sum_logprob=r.sum_logprob)
            suspect = [i for i in suspect if results[i].avg_logprob < options.logprob_threshold]
        for i in suspect:
            results[i] = replace(results[i], tokens=[], flags=[*results[i].flags, "no_speech"])
        return results

    def _no_speech(self, n_samples: int, options: DecodingOptions, timings: dict, start: float) -> Transcription:
        """No window to decode (VAD found no speech): no text."""
        timings["t_total"] = time.perf_counter() - start
        return Transcription("", [], [], options.language or "en", n_samples / SAMPLE_RATE, timings, 0, ["no_speech"])

    # -- the pieces of transcribe() for callers that batch windows of several files (serve/)

    def decode_windows(self, mel: np.ndarray, options: DecodingOptions, n_samples: list[int] | None = None,
                       long_form: list[bool] | None = None) -> list[DecodeResult]:
        """One encoder batch and one decoder batch over log-mel rows (N, 80, 3000) that may
        come from different files; one DecodeResult per row, in order. Rows are independent:
        a window's tokens do not depend on the other rows of its batch. n_samples: each
        row's samples, for word timestamps (None: the whole 30 s holds audio); long_form: each
        row's file is over 30 s (its sparse windows are decoded again, see _decode_states)."""
        options = self._word_options(options)
        states = self.sessions.encode(mel)
        return self._decode_states(states, options, np.random.default_rng(options.seed), n_samples or [CHUNK_SAMPLES] * len(mel),
                                   long_form or [False] * len(mel))

    def _decode_states(self, states, options: DecodingOptions, rng, n_samples: list[int], long_form: list[bool]) -> list[DecodeResult]:
        """Windows decoded on their own (every mode but sequential): the initial prompt before
        each window's prompt, vad's no-speech rule, sampling at the first temperature, sparse
        windows of long files decoded again with timestamps, then the words."""
        prefix = self.prompt_prefix(options)
        if options.chunking == "vad":
            results = self._decode_speech(states, options, prefix, n_samples)
        else:
            results = decode_plain(self.decoder(options), states, options, rng, prefix, n_samples)
        self._redecode_sparse(states, options, prefix, n_samples, long_form, results)
        self._add_words(states, n_samples, results, options, prefix)
        return results

    def _redecode_sparse(self, states, options: DecodingOptions, prefix, n_samples: list[int], long_form: list[bool],
                         results: list[DecodeResult]) -> None:
        """Decoded without timestamps, Whisper sometimes ends a window at a pause and drops
        the rest of its speech (22 words in one silence window of 5 min of continuous dev clips,
        12 in each of three vad windows). A
        window of a long file (silence or vad cut, greedy) with fewer than SPARSE_TOKENS_PER_S
        text tokens per second over at least SPARSE_MIN_S is decoded again with timestamps,
        which walks on past pauses; its text tokens replace the first decode's when there are
        more of them and they pass the compression-ratio threshold. Files of one window keep
        plain greedy decoding (token-equal to transformers)."""
        if options.timestamps or options.chunking not in ("silence", "vad") or (options.beam_size or 1) > 1 or _temperatures(options)[0] > 0:
            return
        eot = self.tokenizer.ids.eot
        sparse = [i for i, (n, long, r) in enumerate(zip(n_samples, long_form, results))
                  if long and n >= SPARSE_MIN_S * SAMPLE_RATE and r.tokens and sum(t < eot for t in r.tokens) < SPARSE_TOKENS_PER_S * n / SAMPLE_RATE]
        if not sparse:
            return
        again = decode_rows_again(self.decoder(replace(options, timestamps=True)), states, sparse, results, prefix=prefix)
        threshold = options.compression_ratio_threshold
        for i, r in zip(sparse, again):
            text = [t for t in r.tokens if t < eot]  # timestamp tokens sort after end of text
            if len(text) > sum(t < eot for t in results[i].tokens) and (threshold is None or compression_ratio(self.tokenizer.decode(text)) <= threshold):
                results[i] = replace(results[i], tokens=text, flags=[*results[i].flags, "redecoded"])

    def prompt_prefix(self, options: DecodingOptions) -> list[int] | None:
        """<|startofprev|> and the initial prompt's tokens (its last 223, as openai/whisper
        keeps), or None without one."""
        if not options.initial_prompt or not options.initial_prompt.strip():
            return None
        prev_sot = int(self.sessions.configs["generation_config.json"].get("prev_sot_token_id", 50361))
        return [prev_sot, *self.tokenizer.encode(" " + options.initial_prompt.strip())[-(MAX_POSITIONS // 2 - 1) :]]

    def assemble(self, window_results: list[tuple[Window, DecodeResult]], duration_s: float, options: DecodingOptions) -> Transcription:
        """One file's Transcription from its (window, result) pairs in order, as transcribe()
        builds it (timings empty). A single pair of a longer file gives that window's own
        segments (the ones a streamed response sends as the window finishes). No pairs (vad
        found no speech): no text."""
        if not window_results:
            return self._no_speech(round(duration_s * SAMPLE_RATE), options, {}, time.perf_counter())
        return self._assemble(window_results, duration_s, self._word_options(options))

    def transcribe_batch(self, audios: list[np.ndarray], options: DecodingOptions | None = None, **changes) -> list[Transcription]:
        """Several 16 kHz signals whose windows share encoder and decoder batches of
        options.batch_size rows; each file assembled on its own. The same text as
        transcribe() file by file; timings hold only t_total, the whole call's time."""
        options = options or DecodingOptions()
        if changes:
            options = replace(options, **changes)
        options = self._word_options(options)
        if options.chunking == "sequential":  # each file's windows depend on its previous ones: file by file
            return [self.transcribe(a, options) for a in audios]
        start = time.perf_counter()
        if any(np.size(a) == 0 for a in audios):
            raise AudioError("<samples>", "no samples")
        pieces = [(i, w, p) for i, audio in enumerate(audios)
                  for w, p in split(np.asarray(audio, dtype=np.float32), chunking=options.chunking, vad=self.speech_spans)]
        per_file: list[list] = [[] for _ in audios]
        size = max(1, int(options.batch_size))
        for b in range(0, len(pieces), size):
            batch = pieces[b : b + size]
            results = self.decode_windows(log_mel_batch([p for _, _, p in batch]), options, [len(p) for _, _, p in batch],
                                          [is_long(len(audios[i])) for i, _, _ in batch])
            for (i, window, _), result in zip(batch, results):
                per_file[i].append((window, result))
        out = [self.assemble(pairs, len(audio) / SAMPLE_RATE, options) if pairs else self._no_speech(len(audio), options, {}, start)
               for pairs, audio in zip(per_file, audios)]
        for t in out:
            t.timings = {"t_total": time.perf_counter() - start}
        return out

    def _word_options(self, options: DecodingOptions) -> DecodingOptions:
        """word_timestamps: decoded with timestamp tokens (as openai/whisper and transformers
        do), on sessions that have the alignment pass (a clear ModelError before any audio)."""
        if not options.word_timestamps:
            return options
        self.sessions.check_alignment()
        return options if options.timestamps else replace(options, timestamps=True)

    def _add_words(self, states, n_samples: list[int], results: list[DecodeResult], options: DecodingOptions,
                   prefix: list[int] | None = None) -> None:
        """Each window's words (core/timing.py) into its result, window-relative: one
        decoder pass per window over its prompt and tokens."""
        if not options.word_timestamps:
            return
        for row, (n, result) in enumerate(zip(n_samples, results)):
            prompt = list(prefix or []) + self.tokenizer.prompt(self.tokenizer.language_id(result.language), options.task, True)
            result.word_runs = words_of_window(self.sessions, self.tokenizer, prompt, result.tokens, [s[row : row + 1] for s in states],
                                               audio_frames(n), result.language, options.prepend_punctuations, options.append_punctuations)

    def _assemble(self, window_results, duration_s: float, options: DecodingOptions) -> Transcription:
        tok = self.tokenizer
        flags = sorted({f for _, r in window_results for f in r.flags})
        overlapping = any(w.stride_left or w.stride_right for w, _ in window_results)  # strided: stitch; silence: join
        language = window_results[0][1].language
        if not options.timestamps:
            if not overlapping:  # one window, or silence-cut windows
                tokens = join_text_tokens([r.tokens for _, r in window_results], tok.ids.eot)
            else:
                tokens = stitch_text_tokens([r.tokens for _, r in window_results], tok.ids.eot)
            text = tok.decode(tokens)
            segment = Segment(0.0, duration_s, text, tokens)
            if len(window_results) == 1:  # the window's own figures are the segment's
                window_fields(segment, window_results[0][1])
            number_segments([segment])
            return Transcription(text, [segment], tokens, language, duration_s, {}, len(window_results), flags,
                                 language_probs=window_results[0][1].language_probs)

        segments, tokens = [], []
        for window, result in window_results:
            ratio = compression_ratio(tok.decode(result.tokens))  # the window's, as openai/whisper's segments carry
            own_from = window.stride_left / SAMPLE_RATE
            own_to = (window.n_samples - window.stride_right) / SAMPLE_RATE
            for k, seg in enumerate(timestamp_segments(result.tokens, tok, window.n_samples / SAMPLE_RATE)):
                # Overlapping windows: keep a segment only in the window whose own span holds its start.
                if overlapping and not (own_from <= seg.start < own_to):
                    continue
                words = None if result.word_runs is None else _words(result.word_runs[k], window)
                # file_time: the window's offset (vad windows: through their speech spans)
                segments.append(window_fields(Segment(round(file_time(window, seg.start), 2), round(file_time(window, seg.end, is_end=True), 2), seg.text, seg.tokens,
                                                      words=words), result, ratio))
                tokens.extend(seg.tokens)
        if len(window_results) == 1:  # one window: every token, timestamps included
            tokens = [t for t in window_results[0][1].tokens if t != tok.ids.eot]
        text = "".join(s.text for s in segments)
        number_segments(segments)
        return Transcription(text, segments, tokens, language, duration_s, {}, len(window_results), flags,
                             language_probs=window_results[0][1].language_probs)


# dev clips run at 2.6-2.9 text tokens per second; windows that stopped short at 1.1 (silence)
# and 1.7 (vad, 14.6 s of speech decoded to its first 11 s); the meeting samples' windows are
# not touched at 2.0
SPARSE_TOKENS_PER_S = 2.0
SPARSE_MIN_S = 10.0  # shorter windows are left alone


def is_long(n_samples: int) -> bool:
    """Over one 30 s window: long-form decoding."""
    return n_samples > CHUNK_SAMPLES + TAIL_TOLERANCE


def decode_rows_again(decoder, states, rows: list[int], results: list[DecodeResult], **decode_options) -> list[DecodeResult]:
    """A second decode of some rows of a batch (their encoder states picked out); its time is
    decoder time of the whole batch, spread over every row's result as decode() spreads its own."""
    picked = np.array(rows)
    subset = states[picked] if isinstance(states, np.ndarray) else [a[picked] for a in states]
    again = decoder.decode(subset, **decode_options)
    extra = sum(r.t_decoder_first + r.t_decoder_loop for r in again) / len(results)
    for r in results:
        r.t_decoder_loop += extra
    return again


def decode_plain(decoder: GreedyDecoder, states, options: DecodingOptions, rng, prefix: list[int] | None = None,
                 n_samples: list[int] | None = None) -> list[DecodeResult]:
    """Windows outside the sequential loop: greedy, or sampled at the first temperature when
    it is above 0 (best_of samples each). Only the sequential loop falls back to the next.
    n_samples: the windows' audio lengths (the speculative draft's frames)."""
    temperature = _temperatures(options)[0]
    if temperature <= 0:
        return decoder.decode(states, prefix=prefix, n_samples=n_samples)
    return decode_best(decoder, states, prefix, temperature, rng, options)


def window_fields(segment: Segment, result: DecodeResult, ratio: float | None = None) -> Segment:
    """A segment takes its window's decode figures (openai/whisper's: one per window)."""
    segment.avg_logprob, segment.no_speech_prob = result.avg_logprob, result.no_speech_prob
    segment.temperature = result.temperature
    segment.compression_ratio = ratio
    return segment


def number_segments(segments: list[Segment]) -> None:
    """ids 0..n-1 over the file; a segment without its window's compression ratio gets its own text's."""
    for i, segment in enumerate(segments):
        segment.id = i
        if segment.compression_ratio is None:
            segment.compression_ratio = compression_ratio(segment.text)


def _words(run: list[tuple[str, float, float, float]], window: Window | None) -> list[Word]:
    """A run's words (text, start, end, probability; window-relative) as Word, seconds from
    the file's start (vad windows: through their speech spans, as the segments); window
    None: the times are the file's already (sequential decoding)."""
    if window is None:
        return [Word(text, round(start, 2), round(end, 2), prob) for text, start, end, prob in run]
    return [Word(text, round(file_time(window, start), 2), round(file_time(window, end, is_end=True), 2), prob) for text, start, end, prob in run]


def _decoder_class(options: DecodingOptions):
    """Beam search when beam_size asks for more than one beam."""
    return BeamDecoder if (options.beam_size or 1) > 1 else GreedyDecoder


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


@lru_cache(maxsize=2)
def _shared(options: ModelOptions) -> Transcriber:
    return Transcriber(options=options)


def transcribe(audio: str | Path | np.ndarray, model: str | Path | ModelOptions | None = None, **decoding) -> Transcription:
    """One call: the model loaded once per ModelOptions (and kept), then Transcriber.transcribe.

    >>> whisper_ort.transcribe("audio/jfk.flac", language="en").text"""
    options = model if isinstance(model, ModelOptions) else ModelOptions(folder=model)
    return _shared(options).transcribe(audio, **decoding)

"""Sequential long-form decoding with timestamps: openai/whisper's transcribe() loop.

Audio over 30 s is walked window by window: decode 30 s with timestamp tokens, keep the
segments that the window completes, and seek to the end of the last complete one (the
whole window when it ends on a single timestamp), so a sentence cut by the window's edge is
decoded again, whole, at the start of the next. This is transformers' `generate` for
long-form input (return_timestamps=True), token for token at temperature 0: windows are
cut from the log-mel of the whole recording (normalised on its own maximum,
features.log_mel_frames) and zero-padded to 3000 frames, the seek and the segments follow
its `_retrieve_segment` (tests/test_sequential.py compares the tokens).

Per window, openai/whisper's fallback: while the text's compression ratio is above
`compression_ratio_threshold` (a loop) or its average log-probability below
`logprob_threshold`, decode again at the next of `temperature`; a window whose no-speech
probability is above `no_speech_threshold` while its log-probability is below the
threshold is silence and gives no text. `condition_on_previous_text` and `initial_prompt`
put earlier text before the prompt (<|startofprev|>), as openai/whisper does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from whisper_ort.core.decoding import MAX_POSITIONS, DecodeResult, DecodingOptions, GreedyDecoder, compression_ratio
from whisper_ort.core.features import HOP_LENGTH, N_FRAMES, SAMPLE_RATE, log_mel_frames
from whisper_ort.core.timing import text_runs, words_of_window
from whisper_ort.core.tokenizer import TIME_PRECISION

FRAME_S = HOP_LENGTH / SAMPLE_RATE  # 0.01 s per mel frame
INPUT_STRIDE = int(round(TIME_PRECISION / FRAME_S))  # 2 mel frames per timestamp step


@dataclass
class WindowSegment:
    start: float
    end: float
    tokens: list[int]  # with their timestamp tokens
    words: list[tuple[str, float, float, float]] | None = None  # word_timestamps: (text, start, end, probability), seconds
    # the window's decode (openai/whisper's segment fields): None where it was not computed
    seek: int | None = None  # the window's first mel frame
    temperature: float | None = None
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None


@dataclass
class SequentialResult:
    segments: list[WindowSegment]
    language: str
    n_windows: int
    flags: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)  # t_features, t_encoder, t_decoder_first, t_decoder_loop
    in_ort: float = 0.0
    language_probs: dict[str, float] | None = None  # the first window's, when the language was detected


def split_segments(tokens: list[int], timestamp_begin: int, time_offset: float, window_frames: int) -> tuple[list[WindowSegment], int]:
    """A window's tokens (no end of text) as segments, and how many mel frames to seek:
    transformers' `_retrieve_segment` (openai/whisper's transcribe loop)."""
    is_ts = [t >= timestamp_begin for t in tokens]
    single_ending = is_ts[-2:] == [False, True]
    # a segment ends where two timestamps follow each other
    cuts = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
    if cuts:
        if single_ending:
            cuts.append(len(tokens))
        else:
            cuts[-1] += 1  # the last segment keeps its closing timestamp
        segments, last = [], 0
        for k, cut in enumerate(cuts):
            piece = tokens[last:cut]
            end_index = -1 if (k < len(cuts) - 1 or single_ending) else -2
            start = time_offset + (piece[0] - timestamp_begin) * TIME_PRECISION
            end = time_offset + (piece[end_index] - timestamp_begin) * TIME_PRECISION
            segments.append(WindowSegment(start, end, piece))
            last = cut
        if single_ending:  # nothing after the last timestamp: the whole window is done
            return segments, window_frames
        # drop what follows the last complete segment: it was cut by the window's edge
        return segments, (tokens[last - 2] - timestamp_begin) * INPUT_STRIDE
    # no pair of timestamps: the whole window is one segment
    stamps = [t for t in tokens if t >= timestamp_begin]
    end_steps = window_frames * FRAME_S / TIME_PRECISION
    if stamps and stamps[-1] != timestamp_begin:
        end_steps = stamps[-1] - timestamp_begin
    return [WindowSegment(time_offset, time_offset + end_steps * TIME_PRECISION, list(tokens))], window_frames


def prompt_tokens(segments: list[WindowSegment], timestamp_begin: int) -> list[int]:
    """What a window's segments add to the next windows' prompt (condition_on_previous_text):
    their tokens, less the second of the two timestamps that close a window's last segment
    (openai/whisper prompts with the first only; transformers' skip_ending_double_timestamps,
    huggingface/transformers#35750). With both, the next window started elsewhere: 150 s of
    dev clips gave 437 tokens against transformers' 474."""
    out: list[int] = []
    for s in segments:
        out += s.tokens[:-1] if len(s.tokens) > 2 and s.tokens[-2] >= timestamp_begin else s.tokens
    return out


def _attach_words(found: list[WindowSegment], runs: list[list], time_offset: float, eot: int, timestamp_begin: int) -> None:
    """Each segment's words from the window's runs of text tokens (the segments are the
    window's tokens in order, each holding whole runs), shifted to the file's time."""
    k = 0
    for seg in found:
        n_runs = len(text_runs(seg.tokens, eot, timestamp_begin))
        seg.words = [(text, start + time_offset, end + time_offset, p) for run in runs[k : k + n_runs] for text, start, end, p in run]
        k += n_runs


def _temperatures(options: DecodingOptions) -> tuple[float, ...]:
    t = options.temperature
    return tuple(t) if isinstance(t, (tuple, list)) else (float(t),)


def _needs_fallback(result: DecodeResult, text: str, options: DecodingOptions) -> tuple[bool, bool]:
    """(decode again at the next temperature, the window is silence)."""
    again = False
    if options.compression_ratio_threshold is not None and compression_ratio(text) > options.compression_ratio_threshold:
        again = True
    low_logprob = options.logprob_threshold is not None and result.avg_logprob < options.logprob_threshold
    if low_logprob:
        again = True
    if options.no_speech_threshold is not None and low_logprob and result.no_speech_prob > options.no_speech_threshold:
        return False, True
    return again, False


def rank_score(result: DecodeResult, length_penalty: float | None) -> float:
    """openai/whisper's MaximumLikelihoodRanker: the sum of log-probabilities over the length
    (length_penalty None) or over ((5 + length) / 6) ** length_penalty (Google NMT's)."""
    length = len(result.tokens)
    penalty = length if length_penalty is None else ((5 + length) / 6) ** length_penalty
    return result.sum_logprob / max(penalty, 1)


def decode_best(decoder: GreedyDecoder, states, prefix, temperature: float, rng, options: DecodingOptions,
                with_no_speech: bool = False, with_logprobs: bool = False) -> list[DecodeResult]:
    """A batch of windows at one temperature, one result per row; above 0 with best_of,
    each row's best of that many samples (rank_score), drawn one batch after another from
    the same generator: the same seed, the same pick."""
    n = (options.best_of or 1) if temperature > 0 else 1
    runs = [decoder.decode(states, prefix=prefix, temperature=temperature, rng=rng, with_no_speech=with_no_speech,
                           with_logprobs=with_logprobs or n > 1) for _ in range(n)]
    if n == 1:
        return runs[0]
    out = []
    for row in zip(*runs):
        best = max(row, key=lambda r: rank_score(r, options.length_penalty))
        for r in row:  # every sample's time was spent
            if r is not best:
                best.t_decoder_first += r.t_decoder_first
                best.t_decoder_loop += r.t_decoder_loop
                best.t_loop_in_ort += r.t_loop_in_ort
        out.append(best)
    return out


def transcribe_sequential(transcriber, samples: np.ndarray, options: DecodingOptions) -> SequentialResult:
    """Walk the recording window by window (see the module's docstring)."""
    tok = transcriber.tokenizer
    sessions = transcriber.sessions
    decoder: GreedyDecoder = transcriber.decoder(options)
    timings = dict.fromkeys(("t_features", "t_encoder", "t_decoder_first", "t_decoder_loop"), 0.0)
    in_ort = 0.0
    t = time.perf_counter()
    mel = log_mel_frames(samples)
    timings["t_features"] += time.perf_counter() - t
    total = mel.shape[1]
    begin = tok.ids.timestamp_begin
    prev_sot = int(sessions.configs["generation_config.json"].get("prev_sot_token_id", 50361))  # <|startofprev|>
    rng = np.random.default_rng(options.seed)
    temperatures = _temperatures(options)
    with_logprobs = options.logprob_threshold is not None
    with_no_speech = options.no_speech_threshold is not None
    context = tok.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
    segments: list[WindowSegment] = []
    flags: set[str] = set()
    language, language_probs = None, None
    seek, windows = 0, 0
    window = np.zeros((1, mel.shape[0], N_FRAMES), np.float32)
    while seek < total:
        n = min(N_FRAMES, total - seek)
        window[0, :, :n] = mel[:, seek : seek + n]
        window[0, :, n:] = 0.0  # the last window is padded in the log-mel, as transformers does
        t = time.perf_counter()
        states = sessions.encode(window)
        timings["t_encoder"] += time.perf_counter() - t
        windows += 1
        prefix = [prev_sot, *context[-(MAX_POSITIONS // 2 - 1) :]] if context else None
        for temperature in temperatures:
            result = decode_best(decoder, states, prefix, temperature, rng, options, with_no_speech, with_logprobs)[0]
            timings["t_decoder_first"] += result.t_decoder_first
            timings["t_decoder_loop"] += result.t_decoder_loop
            in_ort += result.t_loop_in_ort
            again, silence = _needs_fallback(result, tok.decode(result.tokens), options)
            if not again:
                break
            flags.add("temperature_fallback")
        if language is None:
            language, language_probs = result.language, result.language_probs
        flags.update(result.flags)
        if silence:
            flags.add("no_speech")
            seek += n
            continue
        found, offset = split_segments(result.tokens, begin, seek * FRAME_S, n)
        if options.word_timestamps:
            prompt = list(prefix or []) + tok.prompt(tok.language_id(result.language), options.task, True)
            runs = words_of_window(sessions, tok, prompt, result.tokens, states, n, result.language,
                                   options.prepend_punctuations, options.append_punctuations)
            _attach_words(found, runs, seek * FRAME_S, tok.ids.eot, begin)
        ratio = compression_ratio(tok.decode(result.tokens))
        for segment in found:
            segment.seek, segment.temperature, segment.compression_ratio = seek, temperature, ratio
            segment.avg_logprob, segment.no_speech_prob = result.avg_logprob, result.no_speech_prob
        segments += found
        seek += offset
        if options.condition_on_previous_text and temperature < 0.5:
            context += prompt_tokens(found, begin)
        elif options.condition_on_previous_text:
            context = []  # a high-temperature window is not a good prompt (openai/whisper's reset)
    return SequentialResult(segments, language or "en", windows, sorted(flags), timings, in_ort, language_probs)

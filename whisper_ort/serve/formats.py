"""The OpenAI response formats from a Transcription (json, text, srt, vtt, verbose_json) and the SSE events.

text, srt and vtt are core.writers' txt/srt/vtt, byte for byte what `whisper-ort
transcribe --format` writes. verbose_json follows OpenAI's shape; the fields this decoder
does not compute (avg_logprob and no_speech_prob where the decode did not need them) are null rather than made up, and
`language` is the code Whisper uses ("en"), not a name.
"""

from __future__ import annotations

import json

from whisper_ort.core.decoding import compression_ratio
from whisper_ort.core.writers import to_srt, to_txt, to_vtt

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
HOP = 160  # samples per mel frame: `seek` counts frames, as openai/whisper's does
MEDIA = {"text": "text/plain; charset=utf-8", "srt": "text/plain; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}


def usage(duration_s: float) -> dict:
    return {"type": "duration", "seconds": round(duration_s, 3)}


def segment_json(i: int, seg, seek: int) -> dict:
    ratio = seg.compression_ratio if seg.compression_ratio is not None else compression_ratio(seg.text)
    return {"id": i, "seek": seek, "start": seg.start, "end": seg.end, "text": seg.text, "tokens": list(seg.tokens),
            "temperature": seg.temperature or 0.0, "avg_logprob": _rounded(seg.avg_logprob), "compression_ratio": round(ratio, 3),
            "no_speech_prob": _rounded(seg.no_speech_prob)}


def _rounded(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


def words_json(result) -> list[dict]:
    """OpenAI's top-level `words` (timestamp_granularities[]=word): word, start, end."""
    return [{"word": w.word, "start": w.start, "end": w.end} for seg in result.segments for w in (seg.words or [])]


def verbose(result, task: str, window_segments: list[tuple[int, list]]) -> dict:
    """window_segments: (seek, segments) per window, in order (the same segments as result.segments)."""
    segments, i = [], 0
    for seek, segs in window_segments:
        for seg in segs:
            segments.append(segment_json(i, seg, seek))
            i += 1
    body = {"task": task, "language": result.language, "duration": round(result.duration_s, 3), "text": result.text.strip(),
            "segments": segments, "usage": usage(result.duration_s)}
    if any(seg.words is not None for seg in result.segments):
        body["words"] = words_json(result)
    return body


def render(result, response_format: str, task: str, window_segments) -> tuple[str, str]:
    """(body, media type) of one finished transcription."""
    if response_format == "json":
        return json.dumps({"text": result.text.strip(), "usage": usage(result.duration_s)}, ensure_ascii=False), "application/json"
    if response_format == "verbose_json":
        return json.dumps(verbose(result, task, window_segments), ensure_ascii=False), "application/json"
    render_text = {"text": to_txt, "srt": to_srt, "vtt": to_vtt}[response_format]
    return render_text(result), MEDIA[response_format]


def sse(event: dict) -> str:
    """One server-sent event: a `data:` line of JSON and a blank line."""
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


def delta_event(i: int, seg, seek: int) -> dict:
    """One segment as it is decoded: OpenAI's transcript.text.delta plus the segment's times."""
    return {"type": "transcript.text.delta", "delta": seg.text, "segment": segment_json(i, seg, seek)}


def done_event(result) -> dict:
    return {"type": "transcript.text.done", "text": result.text.strip(), "language": result.language,
            "duration": round(result.duration_s, 3)}

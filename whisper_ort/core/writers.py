"""Transcript writers for `whisper-ort transcribe --output-format txt|vtt|srt|tsv|json|all`,
shaped as openai/whisper's utils.py (WriteTXT/WriteVTT/WriteSRT/WriteTSV/WriteJSON)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict
from pathlib import Path

FORMATS = ("txt", "vtt", "srt", "tsv", "json")
ALL = "all"  # every format, one file each


def format_timestamp(seconds: float, decimal: str = ".", hours: bool = True) -> str:
    ms = int(round(max(seconds, 0.0) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    head = f"{h:02d}:" if hours or h else ""
    return f"{head}{m:02d}:{s:02d}{decimal}{ms:03d}"


def to_txt(result, **_) -> str:
    return result.text.strip() + "\n"


# ---------------------------------------------------------------- subtitles


def _words(segment) -> list[dict]:
    return [{"word": w.word, "start": w.start, "end": w.end} for w in (segment.words or [])]


def _word_subtitles(segments, max_line_width: int | None, max_line_count: int | None):
    """openai/whisper's iterate_subtitles: the words of the segments grouped into cues
    (one per segment unless both line limits are given), lines broken at max_line_width."""
    preserve_segments = max_line_count is None or max_line_width is None
    width = max_line_width or 1000
    line_len, line_count = 0, 1
    subtitle: list[dict] = []
    words = [_words(s) for s in segments]
    last = next((w["start"] for ws in words for w in ws), segments[0].start if segments else 0.0)
    for seg_words in words:
        for i, timing in enumerate(dict(w) for w in seg_words):
            long_pause = not preserve_segments and timing["start"] - last > 3.0
            has_room = line_len + len(timing["word"]) <= width
            seg_break = i == 0 and len(subtitle) > 0 and preserve_segments
            if line_len > 0 and has_room and not long_pause and not seg_break:
                line_len += len(timing["word"])  # the same line goes on
            else:
                timing["word"] = timing["word"].strip()
                if (subtitle and max_line_count is not None and (long_pause or line_count >= max_line_count)) or seg_break:
                    yield subtitle  # a new cue
                    subtitle, line_count = [], 1
                elif line_len > 0:
                    line_count += 1  # a new line in the same cue
                    timing["word"] = "\n" + timing["word"]
                line_len = len(timing["word"].strip())
            subtitle.append(timing)
            last = timing["start"]
    if subtitle:
        yield subtitle


def cues(result, fmt_time, highlight_words: bool = False, max_line_width: int | None = None,
         max_line_count: int | None = None):
    """(start, end, text) per cue: one per segment, or from the segments' words when they
    have them; highlight_words: a cue per word with that word underlined (openai/whisper's)."""
    segments = result.segments
    if not (segments and segments[0].words is not None):
        for seg in segments:
            yield fmt_time(seg.start), fmt_time(seg.end), seg.text.strip().replace("-->", "->")
        return
    for subtitle in _word_subtitles(segments, max_line_width, max_line_count):
        start, end = fmt_time(subtitle[0]["start"]), fmt_time(subtitle[-1]["end"])
        text = "".join(w["word"] for w in subtitle)
        if not highlight_words:
            yield start, end, text
            continue
        last = start
        all_words = [w["word"] for w in subtitle]
        for i, word in enumerate(subtitle):
            w_start, w_end = fmt_time(word["start"]), fmt_time(word["end"])
            if last != w_start:  # the gap before the word: the cue's text, nothing underlined
                yield last, w_start, text
            yield w_start, w_end, "".join(re.sub(r"^(\s*)(.*)$", r"\1<u>\2</u>", w) if j == i else w
                                          for j, w in enumerate(all_words))
            last = w_end


def to_srt(result, **subtitle) -> str:
    stamp = lambda s: format_timestamp(s, ",")  # noqa: E731
    return "\n".join(f"{i}\n{a} --> {b}\n{text}\n" for i, (a, b, text) in enumerate(cues(result, stamp, **subtitle), 1))


def to_vtt(result, **subtitle) -> str:
    return "\n".join(["WEBVTT\n"] + [f"{a} --> {b}\n{text}\n" for a, b, text in cues(result, format_timestamp, **subtitle)])


def to_tsv(result, **_) -> str:
    """start<TAB>end<TAB>text in integer milliseconds (no decimal mark a locale could change)."""
    lines = ["start\tend\ttext"]
    lines += [f"{round(1000 * s.start)}\t{round(1000 * s.end)}\t{s.text.strip().replace(chr(9), ' ')}" for s in result.segments]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- json


def segment_dict(seg) -> dict:
    """openai/whisper's segment keys (words only when computed), then nothing else."""
    out = {"id": seg.id, "start": seg.start, "end": seg.end, "text": seg.text, "tokens": list(seg.tokens),
           "temperature": seg.temperature, "avg_logprob": seg.avg_logprob, "compression_ratio": seg.compression_ratio,
           "no_speech_prob": seg.no_speech_prob}
    if getattr(seg, "seek", None) is not None:
        out["seek"] = seg.seek
    if seg.words is not None:
        out["words"] = [asdict(w) for w in seg.words]
    return out


def to_json(result, **_) -> str:
    """openai/whisper's result (text, segments, language), and what we measure besides."""
    data = {
        "text": result.text.strip(),
        "segments": [segment_dict(s) for s in result.segments],
        "language": result.language,
        "language_probs": result.language_probs,
        "duration_s": result.duration_s,
        "tokens": result.tokens,
        "timings_s": result.timings,
        "flags": result.flags,
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


RENDER = {"txt": to_txt, "vtt": to_vtt, "srt": to_srt, "tsv": to_tsv, "json": to_json}


def check_format(fmt: str) -> tuple[str, ...]:
    """The formats `fmt` stands for ('all': every one); an unknown one is a ValueError naming it."""
    if fmt == ALL:
        return FORMATS
    if fmt not in RENDER:
        raise ValueError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)} or {ALL}")
    return (fmt,)


def write_transcript(result, out_path: str | Path, fmt: str, **subtitle) -> Path:
    """Write one format to out_path (subtitle: highlight_words, max_line_width, max_line_count)."""
    if fmt not in RENDER:
        raise ValueError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)} ({ALL}: write_transcripts)")
    out_path = Path(out_path)
    write_atomic(out_path, RENDER[fmt](result, **subtitle))
    return out_path


def write_transcripts(result, out_dir: str | Path, name: str, fmt: str, **subtitle) -> list[Path]:
    """<out_dir>/<name>.<ext> for the format, or for each format with 'all'."""
    return [write_transcript(result, Path(out_dir) / f"{name}.{f}", f, **subtitle) for f in check_format(fmt)]


def write_atomic(path: str | Path, text: str) -> None:
    """Write text to path via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

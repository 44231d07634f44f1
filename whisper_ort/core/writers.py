"""Transcript writers for `whisper-ort transcribe --format txt|srt|vtt|json` (as openai/whisper's utils.py)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

FORMATS = ("txt", "srt", "vtt", "json")


def format_timestamp(seconds: float, decimal: str = ".", hours: bool = True) -> str:
    ms = int(round(max(seconds, 0.0) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    head = f"{h:02d}:" if hours or h else ""
    return f"{head}{m:02d}:{s:02d}{decimal}{ms:03d}"


def to_txt(result) -> str:
    return result.text.strip() + "\n"


def to_srt(result) -> str:
    blocks = []
    for i, seg in enumerate(result.segments, 1):
        blocks.append(f"{i}\n{format_timestamp(seg.start, ',')} --> {format_timestamp(seg.end, ',')}\n{seg.text.strip()}\n")
    return "\n".join(blocks)


def to_vtt(result) -> str:
    lines = ["WEBVTT\n"]
    for seg in result.segments:
        lines.append(f"{format_timestamp(seg.start)} --> {format_timestamp(seg.end)}\n{seg.text.strip()}\n")
    return "\n".join(lines)


def to_json(result) -> str:
    data = {
        "text": result.text.strip(),
        "language": result.language,
        "duration_s": result.duration_s,
        "tokens": result.tokens,
        "segments": [asdict(s) for s in result.segments],
        "timings_s": result.timings,
        "flags": result.flags,
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


RENDER = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt, "json": to_json}


def write_transcript(result, out_path: str | Path, fmt: str) -> Path:
    if fmt not in RENDER:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    out_path = Path(out_path)
    write_atomic(out_path, RENDER[fmt](result))
    return out_path


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

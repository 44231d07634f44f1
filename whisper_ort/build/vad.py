"""Silero VAD into the model folder: the ONNX file faster-whisper's wheel ships (found by
path, not imported: importing faster_whisper loads CTranslate2), with its license note.
Optional: without it everything but chunking="vad" works (core/vad.py names the file)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from whisper_ort.core.vad import VAD_FILE, VAD_LICENSE

LICENSE_NOTE = """silero_vad_v6.onnx: Silero VAD, https://github.com/snakers4/silero-vad
License: MIT. Copyright (c) 2020-present Silero Team.
Copied from the faster-whisper wheel (faster_whisper/assets/, MIT, Copyright (c) 2023 SYSTRAN).

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def packaged_vad() -> Path | None:
    """The Silero file in the installed faster-whisper wheel, or None."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "assets" / VAD_FILE
    return path if path.is_file() else None


def install_vad(folder: str | Path, source: str | Path | None = None, log=print) -> Path | None:
    """Copy Silero VAD and its license note into folder (kept when already there); None when
    no source is installed (the folder then works without chunking="vad")."""
    folder = Path(folder)
    dst = folder / VAD_FILE
    if dst.is_file() and dst.stat().st_size:
        return dst
    source = Path(source) if source is not None else packaged_vad()
    if source is None or not source.is_file():
        log(f"Silero VAD not found (pip install faster-whisper to get {VAD_FILE}): chunking='vad' unavailable in {folder}")
        return None
    tmp = dst.with_suffix(".tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(dst)  # never a half-copied file under the real name
    (folder / VAD_LICENSE).write_text(LICENSE_NOTE)
    log(f"copied Silero VAD into {dst}")
    return dst

"""A copy of the built mha folder with one of its files swapped out, for the tests of old or
damaged folders: the other files linked, the external weights copied (ONNX Runtime refuses
external data behind a link out of the folder)."""

from __future__ import annotations

import shutil
from pathlib import Path


def mha_copy(model_dir: Path, root: Path, swapped: str) -> tuple[Path, Path]:
    """(the built mha folder, its copy under `root` without `swapped`, which the caller writes)."""
    from whisper_ort.core.folder import variant_dir

    built = variant_dir(model_dir, "mha")
    copy = root / built.name
    copy.mkdir()
    for f in built.iterdir():
        if f.suffix == ".data":
            shutil.copyfile(f, copy / f.name)
        elif f.name != swapped:
            (copy / f.name).symlink_to(f.resolve())
    return built, copy

"""A small reader for CTranslate2's `model.bin` (the format of ctranslate2/specs/model_spec.py `_serialize`)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

# Order of the DataType enum in include/ctranslate2/types.h.
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


class CT2FormatError(ValueError):
    """The file is not a CTranslate2 model.bin this reader understands."""


def read_ct2_model(path: str | Path) -> tuple[str, dict[str, np.ndarray], dict[str, str]]:
    """Return (spec name, {variable name: array}, {alias: target}) from a model.bin."""
    data = memoryview(Path(path).read_bytes())
    pos = 0

    def take(fmt: str):
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise CT2FormatError(f"{path}: truncated at byte {pos}")
        values = struct.unpack_from(fmt, data, pos)
        pos += size
        return values[0] if len(values) == 1 else values

    def take_string() -> str:
        nonlocal pos
        length = take("<H")
        raw = bytes(data[pos : pos + length])
        pos += length
        return raw[:-1].decode("utf-8")

    version = take("<I")
    if version < 5 or version > 6:
        raise CT2FormatError(f"{path}: unsupported binary version {version}")
    spec = take_string()
    take("<I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(take("<I")):
        name = take_string()
        rank = take("<B")
        shape = tuple(take("<I") for _ in range(rank))
        type_id = take("<B")
        if type_id >= len(_DTYPES) or _DTYPES[type_id] == "bfloat16":
            raise CT2FormatError(f"{path}: variable {name} has unsupported type id {type_id}")
        nbytes = take("<I")
        dtype = np.dtype(_DTYPES[type_id])
        if nbytes != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
            raise CT2FormatError(f"{path}: variable {name} size {nbytes} does not match shape {shape}")
        if pos + nbytes > len(data):
            raise CT2FormatError(f"{path}: truncated inside variable {name}")
        variables[name] = np.frombuffer(data, dtype=dtype, count=nbytes // dtype.itemsize, offset=pos).reshape(shape)
        pos += nbytes
    aliases = {}
    for _ in range(take("<I")):
        alias = take_string()
        aliases[alias] = take_string()
    if pos != len(data):
        raise CT2FormatError(f"{path}: {len(data) - pos} trailing bytes")
    return spec, variables, aliases

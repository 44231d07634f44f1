"""The record every implementation writes, the summary over records, and atomic writers.

One record per (file, repeat), the same for whisper_ort and every peer (docs/DESIGN.md).
Times are seconds (`t_*`), `ms_per_token` milliseconds; stages a peer cannot measure
stay None.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from whisper_ort.core.writers import write_atomic


@dataclass
class Record:
    file: str
    duration_s: float | None = None
    implementation: str = "whisper_ort"
    variant: str = "default"
    threads: int | None = None
    beam_size: int = 1  # beams of the decoding (1: greedy)
    repeat: int = 0
    text: str = ""
    n_tokens: int = 0
    language: str | None = None
    t_load_audio: float | None = None
    t_features: float | None = None
    t_encoder: float | None = None
    t_decoder_first: float | None = None
    t_decoder_loop: float | None = None
    t_detokenize: float | None = None
    t_total: float | None = None
    rtf: float | None = None
    ms_per_token: float | None = None
    n_windows: int | None = None
    loop_overhead_pct: float | None = None  # % of the decoder loop spent outside ONNX Runtime
    flags: list[str] = field(default_factory=list)  # e.g. "repetition", "max_new_tokens"
    status: str = "ok"
    error: str | None = None

    def finish(self) -> Record:
        """Fill the derived figures (rtf, ms_per_token) from the measured ones."""
        if self.t_total is not None and self.duration_s:
            self.rtf = self.t_total / self.duration_s
        decoder = [t for t in (self.t_decoder_first, self.t_decoder_loop) if t is not None]
        if decoder and self.n_tokens:
            self.ms_per_token = 1000.0 * sum(decoder) / self.n_tokens
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


RECORD_FIELDS = [f.name for f in fields(Record)]


def failed_record(file: str, implementation: str, error: str, **extra) -> Record:
    return Record(file=file, implementation=implementation, status="error", error=error, **extra)


def stats(values) -> dict | None:
    """mean / p50 / p95 / min / max of a list of numbers (None when empty)."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    if arr.size == 0:
        return None
    return {
        "mean": float(arr.mean()),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "n": int(arr.size),
    }


def summarize(records: list[Record], environment: dict | None = None, **extra) -> dict:
    ok = [r for r in records if r.status == "ok"]
    files_failed = sorted({r.file for r in records if r.status != "ok"})
    summary = {
        "n_records": len(records),
        "n_files": len({r.file for r in records}),
        "n_ok": len({r.file for r in ok}),
        "n_failed": len(files_failed),
        "failed_files": files_failed,
        "t_total_s": stats(r.t_total for r in ok),
        "rtf": stats(r.rtf for r in ok),
        "ms_per_token": stats(r.ms_per_token for r in ok),
        "loop_overhead_pct": stats(r.loop_overhead_pct for r in ok),
        "stages_p50_s": {
            name: (stats(getattr(r, name) for r in ok) or {}).get("p50")
            for name in ("t_load_audio", "t_features", "t_encoder", "t_decoder_first", "t_decoder_loop", "t_detokenize")
        },
        "environment": environment or {},
    }
    summary.update(extra)
    return summary


# ---------------------------------------------------------------- atomic writers


def write_json(path: str | Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_jsonable) + "\n")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def records_to_csv(records: list[Record]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RECORD_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        row = r.to_dict()
        row["flags"] = ";".join(row["flags"])
        writer.writerow(row)
    return buf.getvalue()


def write_records(out_dir: str | Path, records: list[Record], stem: str = "inference_per_file") -> None:
    out_dir = Path(out_dir)
    write_json(out_dir / f"{stem}.json", [r.to_dict() for r in records])
    write_atomic(out_dir / f"{stem}.csv", records_to_csv(records))


def read_records(path: str | Path) -> list[Record]:
    return [Record.from_dict(d) for d in json.loads(Path(path).read_text())]

"""Records on disk as DataFrames and dicts; a note naming the command when they are missing."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pandas as pd

from whisper_ort.measure.records import RECORD_FIELDS
from whisper_ort.study.names import REFERENCE_IMPL, STAGES
from whisper_ort.study.paths import NATIVE, StudyPaths, resolve


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def records_frame(rows) -> pd.DataFrame:
    """Records (dicts or Record objects) as a DataFrame with every record column."""
    rows = [r if isinstance(r, dict) else r.to_dict() for r in (rows or [])]
    df = pd.DataFrame(rows)
    for name in RECORD_FIELDS:
        if name not in df.columns:
            df[name] = None
    numeric = ["duration_s", "threads", "repeat", "n_tokens", "n_windows", "rtf", "ms_per_token", "t_total", *STAGES]
    for name in numeric:
        df[name] = pd.to_numeric(df[name], errors="coerce")
    df["implementation"] = df["implementation"].fillna(NATIVE).astype(str)
    df["file"] = df["file"].astype(str)
    df["status"] = df["status"].fillna("ok").astype(str)
    df["text"] = df["text"].fillna("").astype(str)
    return df


def load_records(path: str | Path) -> pd.DataFrame | None:
    """A records file (inference_per_file.json or compare's records.json) as a DataFrame,
    or None when it is not there or not readable."""
    data = _read_json(Path(path))
    if not isinstance(data, list):
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            data = data["records"]
        else:
            return None
    return records_frame(data)


def load_summary(path: str | Path) -> dict | None:
    data = _read_json(Path(path))
    return data if isinstance(data, dict) else None


def load_latency(paths: StudyPaths, implementation: str = NATIVE) -> tuple[pd.DataFrame | None, dict | None]:
    folder = paths.latency_dir(implementation)
    return load_records(folder / "inference_per_file.json"), load_summary(folder / "inference_summary.json")


def load_thread_runs(paths: StudyPaths) -> tuple[pd.DataFrame | None, dict]:
    """All thread-scaling records (one folder per thread count) and {threads: summary}."""
    frames, summaries = [], {}
    root = paths.threads_dir
    if not root.is_dir():
        return None, {}
    for folder in sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
        df = load_records(folder / "inference_per_file.json")
        if df is None or df.empty:
            continue
        df["threads"] = int(folder.name)
        frames.append(df)
        summaries[int(folder.name)] = load_summary(folder / "inference_summary.json") or {}
    if not frames:
        return None, {}
    return pd.concat(frames, ignore_index=True), summaries


def load_compare(paths: StudyPaths, beam_size: int = 1) -> tuple[pd.DataFrame | None, dict | None]:
    """The greedy compare run's records and summary (beam_size > 1: that beam run's)."""
    folder = paths.compare_dir if beam_size == 1 else paths.beam_compare_dir(beam_size)
    return load_records(folder / "records.json"), load_summary(folder / "summary.json")


def beam_compare_sizes(paths: StudyPaths) -> list[int]:
    """The beam sizes with a compare run on disk (<bench_dir>/compare_beam<N>/), ascending."""
    prefix = paths.beam_compare_dir(0).name[:-1]
    sizes = [d.name[len(prefix):] for d in paths.bench_dir.glob(f"{prefix}*") if (d / "records.json").is_file()]
    return sorted(int(n) for n in sizes if n.isdigit() and int(n) > 1)


def compare_mismatch(summary: dict | None, implementations: list[str], beam_size: int = 1, machine: dict | None = None) -> str | None:
    """Why compare records on disk are not the run a notebook asks for (another decoding,
    implementations missing, another machine), or None when they are: a `compare --beam-size 5`
    run left in the study's folder must not be shown as the greedy comparison, nor records
    committed from one CPU beside a study measured on another. machine: {"cpu_model",
    "cpu_count"} of this one (default: read here)."""
    if not summary:
        return None
    have = summary.get("beam_size") or 1
    if have != beam_size:
        return f"the compare records were made with beam size {have}, not {beam_size}"
    measured = summary.get("implementations_order") or list(summary.get("implementations") or {})
    lacking = [i for i in implementations if i not in measured]
    if lacking:
        return f"the compare records lack {', '.join(lacking)}"
    if machine is None:
        from whisper_ort.measure.environment import cpu_model

        machine = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count()}
    env = summary.get("environment") or {}
    then, now = (env.get("cpu_model"), env.get("cpu_count")), (machine.get("cpu_model"), machine.get("cpu_count"))
    if then[0] and then != now:
        return f"the compare records were measured on {then[0]} ({then[1]} CPUs), this machine is {now[0]} ({now[1]} CPUs)"
    return None


def load_longform(paths: StudyPaths) -> dict | None:
    """longform.json (python -m whisper_ort.measure.longbench) as written, or None when it
    is not there, not readable or holds no rows."""
    data = _read_json(paths.longform_dir / "longform.json")
    return data if isinstance(data, dict) and isinstance(data.get("rows"), list) else None


def load_serving(paths: StudyPaths) -> dict | None:
    """serving.json (python -m whisper_ort.measure.serving): {"meta": ..., "results": [...]},
    or None when it is not there, not readable or not of that shape."""
    data = _read_json(paths.serving_dir / "serving.json")
    return data if isinstance(data, dict) and isinstance(data.get("results"), list) else None


def load_floors(paths: StudyPaths) -> dict:
    from whisper_ort.measure.hardware import load_floors as _load

    try:
        return _load(paths.hardware)
    except (OSError, ValueError):
        return {}


def load_reference(paths: StudyPaths) -> pd.DataFrame | None:
    df = load_records(paths.reference)
    if df is not None and not df.empty:
        df.loc[df["implementation"] == NATIVE, "implementation"] = REFERENCE_IMPL  # a file without the field
    return df


def manifest(audio_dir: str | Path = "audio") -> pd.DataFrame | None:
    path = resolve(audio_dir) / "MANIFEST.csv"
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    df = pd.DataFrame(rows)
    if "duration_s" in df:
        df["duration_s"] = pd.to_numeric(df["duration_s"], errors="coerce")
    return df.sort_values("file").reset_index(drop=True)


def _utc(value) -> str | None:
    """'2025-11-25T14:50:00Z' from the ISO forms the records carry (Z, +00:00 or none)."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _latest_date(*sources) -> str | None:
    """The latest date any of the summaries / records carries (never the clock)."""
    dates = []
    for s in sources:
        if isinstance(s, dict):
            env = s.get("environment") if isinstance(s.get("environment"), dict) else {}
            for value in (s.get("date_utc"), s.get("created"), env.get("date_utc")):
                if value and _utc(value):
                    dates.append(_utc(value))
    return max(dates) if dates else None


class Missing(str):
    """A note saying which records are missing and the command that makes them."""


def missing(what: str, command: str) -> Missing:
    return Missing(f"No {what} yet: run `{command}` first.")

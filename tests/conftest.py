"""Shared fixtures: where the sample audio lives and what MANIFEST.csv says about it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_audio_dir() -> Path:
    """audio/ when `make audio` has filled it, else ../shared/audio next to the repo."""
    local = REPO / "audio"
    if (local / "MANIFEST.csv").is_file():
        return local
    return REPO.parent / "shared" / "audio"


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    d = find_audio_dir()
    if not (d / "MANIFEST.csv").is_file():
        pytest.skip(f"no sample audio: neither {REPO / 'audio'} nor {d} holds MANIFEST.csv")
    return d


@pytest.fixture(scope="session")
def manifest(audio_dir) -> list[dict]:
    """MANIFEST.csv rows (file, duration_s, sample_rate, channels, format, ...)."""
    with open(audio_dir / "MANIFEST.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))

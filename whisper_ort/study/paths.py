"""The results layout: the one owner of every path the study and the measuring commands
read or write. A leaf module (pathlib only): measure's command-line defaults come from here.

    results/benchmarks/                        BENCH_DIR (params/ci.yaml: results/benchmarks/ci/)
        latency/<implementation>/inference_per_file.json   latency sweep
        threads/<N>/inference_per_file.json                 thread scaling
        hardware.json                                       GEMM peak, bandwidth, floors
        compare/records.json, summary.json                  whisper_ort vs its peers
        compare_beam5/records.json, summary.json            the same with 5 beams (beam search's peers)
        levers/levers.json, levers.md                       performance levers
        longform/longform.json, longform.md                 long audio (measure.longbench)
        serving/serving.json, serving.md                    concurrent clients (measure.serving)
        study.json                                          what the study ran, how long
    results/reference/inference_per_file.json  hf_generate transcripts (REFERENCE)
    results/plots/                             PNG and SVG (PLOTS_DIR)
    results/notebooks/                         executed notebooks (NOTEBOOKS_DIR)
    results/history/                           measured rows kept as history (committed)
    audio/MANIFEST.csv                         ground-truth transcripts
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULTS_DIR = "results"
BENCH_DIR = "results/benchmarks"
PLOTS_DIR = "results/plots"
NOTEBOOKS_DIR = "results/notebooks"
REFERENCE = "results/reference/inference_per_file.json"
HISTORY_DIR = "results/history"
COMPARE_DIR = f"{BENCH_DIR}/compare"
LEVERS_DIR = f"{BENCH_DIR}/levers"
LONGFORM_DIR = f"{BENCH_DIR}/longform"
SERVING_DIR = f"{BENCH_DIR}/serving"
HARDWARE = f"{BENCH_DIR}/hardware.json"
NATIVE = "whisper_ort"  # this package's implementation name in records


def repo_root() -> Path:
    """The repository: the nearest folder upward of the working directory holding
    pyproject.toml and whisper_ort/ (notebooks run with their own folder as working
    directory), else the checkout this package runs from."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "whisper_ort").is_dir():
            return folder
    return Path(__file__).resolve().parents[2]


def resolve(path: str | Path | None) -> Path | None:
    """A path as given when absolute, else relative to the repository root."""
    if path is None:
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else repo_root() / path


@dataclass(frozen=True)
class StudyPaths:
    """Where one study's records and plots live (absolute paths). Every section of
    RESULTS.md reads from here, so a study with params/ci.yaml never reads the main one's."""

    bench_dir: Path
    plots_dir: Path
    reference: Path

    @classmethod
    def of(cls, bench_dir=BENCH_DIR, plots_dir=PLOTS_DIR, reference=REFERENCE) -> StudyPaths:
        return cls(resolve(bench_dir), resolve(plots_dir), resolve(reference))

    @classmethod
    def from_results(cls, results_dir=RESULTS_DIR) -> StudyPaths:
        root = resolve(results_dir)
        return cls(root / "benchmarks", root / "plots", root / "reference" / "inference_per_file.json")

    def latency_dir(self, implementation: str = NATIVE) -> Path:
        return self.bench_dir / "latency" / implementation

    @property
    def threads_dir(self) -> Path:
        return self.bench_dir / "threads"

    @property
    def hardware(self) -> Path:
        return self.bench_dir / "hardware.json"

    @property
    def compare_dir(self) -> Path:
        return self.bench_dir / "compare"

    def beam_compare_dir(self, beam_size: int) -> Path:
        """A `compare --beam-size N` run's records: beside the greedy one, never over it."""
        return self.bench_dir / f"compare_beam{beam_size}"

    @property
    def levers_dir(self) -> Path:
        return self.bench_dir / "levers"

    @property
    def longform_dir(self) -> Path:
        return self.bench_dir / "longform"

    @property
    def serving_dir(self) -> Path:
        return self.bench_dir / "serving"

    @property
    def study_json(self) -> Path:
        return self.bench_dir / "study.json"

    @property
    def history_dir(self) -> Path:
        """Committed tables of what is no longer measured (removed variants' levers rows)."""
        return resolve(HISTORY_DIR)

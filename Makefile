# Two commands on a fresh machine: `make study` (the main job) and `make test`.
# Every step skips itself when its output is already there and valid.

PYTHON       ?= python3
VENV         := .venv
BIN          := $(VENV)/bin
# The sample audio travels with the repository (samples/: files, MANIFEST.csv, LICENSES.md);
# `make audio SHARED_AUDIO=/path/to/audio` adds another folder's files on top.
SAMPLES      := samples
SHARED_AUDIO ?=
MODEL_DIR    ?= whisper-base-with-past
PARAMS       ?= params/default.yaml
THREADS      ?= 2
STAMP        := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup install model audio browser bench study notebooks report test lint lab clean

setup: install model audio

install: $(STAMP)

# Reinstall only when the dependency lists change. torch==2.13.0 resolves to the CPU
# wheel on this machine's local wheel store; the constraints pin every other version.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[notebooks,peers,export,dev,serve,ray]"
	# optimum-intel exports the OpenVINO peer's folder; without its dependencies, whose pins
	# bring torchvision (which does not import beside torch 2.13) and a newer optimum.
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt optimum-intel
	$(BIN)/python -m ipykernel install --sys-prefix --name whisper-ort --display-name "whisper-ort (.venv)" >/dev/null
	# Bytecode for the package, as pip writes for an installed one: an editable install under
	# PYTHONDONTWRITEBYTECODE=1 (this project's machines) compiled its modules at every start,
	# ~60 ms of each cold start (the worker's load 0.52 -> 0.475 s, AMD EPYC Zen 3).
	$(BIN)/python -m compileall -q whisper_ort
	touch $@

model: $(STAMP)
	$(BIN)/whisper-ort export --onnx-dir $(MODEL_DIR)
	$(BIN)/whisper-ort optimize --onnx-dir $(MODEL_DIR)

audio:
	@mkdir -p audio
	@for src in $(SAMPLES) $(SHARED_AUDIO); do \
	  test -d "$$src" || { echo "no folder $$src: set SHARED_AUDIO=/path/to/audio, or fill audio/ yourself"; exit 1; }; \
	  n=0; for f in "$$src"/*; do \
	    case "$$(basename "$$f")" in README.md|LICENSES.md) continue;; esac; \
	    b=audio/$$(basename "$$f"); \
	    if [ ! -f "$$b" ] || ! cmp -s "$$f" "$$b"; then cp "$$f" "$$b" && chmod u+w "$$b" && n=$$((n+1)); fi; \
	  done; echo "audio/: $$n file(s) copied from $$src"; \
	done; echo "audio/: $$(ls audio | wc -l) files present"

# The serve page's test drives Debian's chromium through Playwright (never a browser
# download of Playwright's own); installed once, as root, where apt-get is.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the page test"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "could not install chromium: the page test will skip"; \
	  else echo "chromium is not installed (as root: apt-get install chromium): the page test will skip"; fi; }

bench: setup
	$(BIN)/whisper-ort bench --audio-dir audio --onnx-dir $(MODEL_DIR) --threads $(THREADS) --write-txt

notebooks: setup
	$(BIN)/python -m whisper_ort.study --params $(PARAMS)

report: $(STAMP)
	$(BIN)/whisper-ort report

study: setup notebooks report

# --durations: the 15 slowest tests in every log, so a test that grows shows in CI (the house keeps
# make test under 20 min from a warm setup).
test: setup browser
	$(BIN)/python -m pytest -q --durations=15
	$(BIN)/python -m pytest -q --nbval-lax notebooks/

lint: $(STAMP)
	$(BIN)/ruff check whisper_ort tests

lab: setup
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf results/benchmarks results/notebooks results/reference

# Two commands on a fresh machine: `make test` and `make search` create .venv and install the
# project (with its version ranges) when it is missing. Everything else assumes the same.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install test test-slow search params leaderboard docs lint clean-venv transfer plots \
	dashboard bench test-oldest

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,onnx]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# The same suite on the lowest version of every runtime dependency pyproject.toml allows
# (.ci/oldest.py writes them as constraints), in a venv of its own; .ci/run runs it too.
OLDEST := .venv-oldest
test-oldest:
	test -x $(OLDEST)/bin/python || $(PY) -m venv $(OLDEST)
	$(PY) .ci/oldest.py > $(OLDEST)/constraints.txt
	$(OLDEST)/bin/python -m pip install -q -c $(OLDEST)/constraints.txt -e '.[dev,onnx]'
	$(OLDEST)/bin/python -m pip list 2>/dev/null | grep -E '^(torch|torchvision|optuna|pandas|numpy|onnx|onnxruntime) '
	$(OLDEST)/bin/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# The real search (20 epochs, 50,000/10,000 split, auto device) until the study holds 100
# trained trials; re-running resumes it. More options: SEARCH_ARGS="--timeout 3600 --storage URL".
search: $(STAMP)
	$(BIN)/python -m search run --jobs auto $(SEARCH_ARGS)

params: $(STAMP)
	$(BIN)/python -m models

# results/leaderboard.csv from runs.csv, then the generated tables of README.md and docs/ and
# the pictures drawn from it (params vs accuracy, the certificates).
leaderboard: $(STAMP)
	$(BIN)/python -m benchmarks leaderboard
	$(BIN)/python -m benchmarks docs
	$(BIN)/python -m benchmarks plots --summary

docs: $(STAMP)
	$(BIN)/python -m benchmarks docs

# The ants/bees transfer task (fine-tune ResNet18). Offline, ImageNet weights must already be
# in torch's cache: `make transfer WEIGHTS=PATH` (a state-dict file) or WEIGHTS=none.
WEIGHTS ?= imagenet
transfer: $(STAMP)
	$(BIN)/python -m benchmarks hymenoptera --weights $(WEIGHTS)

# PNGs under results/plots/ from the committed runs, checkpoints and study databases
# (MNIST from $MNIST_ROOT or ./data).
plots: $(STAMP)
	$(BIN)/python -m benchmarks plots

# optuna-dashboard over the default study database on 127.0.0.1 (PORT=8080; STORAGE=URL).
PORT ?= 8080
dashboard: $(STAMP)
	$(BIN)/python -m search.dashboard --port $(PORT) $(if $(STORAGE),--storage $(STORAGE))

# Images/s of the harness vs the classic PyTorch loop, each doing the same recipe: nas_plain_5k
# with its whole recipe (batch 32, weight average, shear/zoom/rotate/shift; the headline ratio)
# and resnet_8k at batch 128 (MNIST from $MNIST_ROOT or ./data); figures, with the CPU and
# precision of each, to results/speed.json. A few minutes on 2 cores. BENCH_ARGS adds options:
# --full (every fast-path choice switched off in turn, K=2 side by side: ~3x as long),
# --threads 1 (a machine other jobs share), --profile (one step's parts instead).
bench: $(STAMP)
	$(BIN)/python -m benchmarks speed $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean-venv:
	rm -rf $(VENV)

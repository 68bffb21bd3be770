# Quick start: `make demo` (train + evaluate the swiss roll, write Figure 1) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of PyTorch pinned so that a plain `torch` requirement cannot pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m thermodiff reproduce swiss_roll --budget quick --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench && $(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/swiss_roll.py

clean:
	rm -rf runs .pytest_cache

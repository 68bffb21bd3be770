# Quick start: `make demo` (train + evaluate the swiss roll, write Figure 1) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo report test lint bench devdata devwheels clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of PyTorch pinned so that a plain `torch` requirement cannot pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m thermodiff reproduce swiss_roll --budget quick --out runs/demo

# The quick budget of all six experiments, then runs/report/report.html (rewritten after each one; rerun to resume).
# bark, MNIST and CIFAR-10 read real data from THERMODIFF_DATA (here: ../shared/data unless set); an
# experiment whose data are absent is reported as failed with the reason, the others still run.
report: $(STAMP)
	THERMODIFF_DATA="$${THERMODIFF_DATA:-$(DATA)}" $(BIN)/python -m thermodiff reproduce --budget quick --out runs/report

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench && $(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/swiss_roll.py

# For a lent GPU (bench/device.sh): what does not travel with the checkout, to be carried.
DATA ?= ../shared/data
devdata:
	rm -rf .devdata && mkdir -p .devdata
	cp -r $(DATA)/mnist $(DATA)/mnist-train-first10k $(DATA)/binarized-mnist $(DATA)/brodatz-bark .devdata/
	chmod -R u+w .devdata

# diffusers (bench/throughput.py only) and what it needs beyond the device's packages, for Python 3.12.
DEVWHEELS := diffusers==0.42.1 huggingface-hub==2.4.0 importlib-metadata==10.2.0 lazy-importer==0.1.0 \
	httpx2==2.16.2 httpcore2==2.16.2 truststore==0.10.5 click==8.5.1 zipp==4.1.2 safetensors==0.8.0 hf-xet==1.8.0
devwheels:
	rm -rf .whl && $(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 -d .whl $(DEVWHEELS)

clean:
	rm -rf runs .pytest_cache

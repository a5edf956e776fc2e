# Two entry points: `make run` builds everything for config/config.yaml; `make test` runs the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= $(shell nproc)

.PHONY: run test install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU wheel of exactly this version is what keeps CUDA out.
	$(BIN)/pip install --quiet --no-compile torch==2.13.0
	$(BIN)/pip install --quiet --no-compile -e '.[test]'
	# pip byte-compiles one file at a time; compileall uses every core (the install 92 s -> 68 s
	# on 2). Like pip, it skips files this Python cannot compile (torch's Python 3.12 test helpers).
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > $(VENV)/compileall.log 2>&1 || true
	touch $@

install: $(BIN)/.installed

run: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES) $(SNAKEMAKE_ARGS)

test: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf results .snakemake

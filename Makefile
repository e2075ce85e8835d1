# crdsmini / iris_reduce developer targets.  `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install test conformance demo bench bench-iris lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,demo,dask]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv: crdsmini + iris_reduce with the test, demo and dask extras

test: $(STAMP)  ## run the whole test suite (conformance replay included)
	$(BIN)/pytest tests

conformance: $(STAMP)  ## replay ../shared/conformance only
	$(BIN)/pytest -m conformance tests

demo: $(STAMP)  ## synthesize an IRIS frame, choose its references, calibrate it
	$(BIN)/python -m iris_reduce.demo demo_output

bench: $(STAMP)  ## crdsmini speed and memory figures vs the CRDS oracle (prints a table)
	$(BIN)/python benchmarks/run.py

bench-iris: $(STAMP)  ## iris_reduce on 4096x4096 frames vs the anchors' way (~5 min, ~8 GB)
	$(BIN)/python benchmarks/bench_iris.py

lint: $(STAMP)  ## static checks
	$(BIN)/python -m compileall -q crdsmini iris_reduce tests

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache demo_output

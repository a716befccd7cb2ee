# `make demo` and `make test` each build .venv from nothing on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
EXTRAS ?= dev,embed,train
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: demo test lint format docs bench clean

$(STAMP): pyproject.toml constraints/ci.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints/ci.txt -e '.[$(EXTRAS)]'
	touch $@

demo: $(STAMP)
	$(BIN)/ftdata lint ftdata/samples/support_chat.jsonl --output-format full --exit-zero
	$(BIN)/ftdata lint ftdata/samples/support_chat.jsonl --output-format json --exit-zero --output-file demo-findings.json
	@echo "demo: the findings are also in demo-findings.json"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PY) -m pytest

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: $(STAMP)
	$(BIN)/ftdata rules --format markdown > docs/rules.md

bench: $(STAMP)
	$(PY) benchmarks/lint_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info demo-findings.json

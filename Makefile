# `make demo` and `make test` each build .venv from nothing on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
EXTRAS ?= dev,embed,train,ray
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: demo test browser format docs bench clean

$(STAMP): pyproject.toml setup.py ftdata/_native.c constraints/ci.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints/ci.txt -e '.[$(EXTRAS)]'
	touch $@

demo: $(STAMP)
	$(BIN)/ftdata lint ftdata/samples/support_chat.jsonl --output-format full --exit-zero
	$(BIN)/ftdata audit ftdata/samples/support_chat.jsonl --stratify-by metadata.category --max-length 128 --html demo-report.html --json demo-report.json
	@echo "demo: open demo-report.html in a browser for the plots"

# The HTML report is tested in a real headless Chromium (Debian's package); without root
# or apt the browser test is skipped, the rest still runs.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) || echo "note: chromium could not be installed; the browser test will be skipped"

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(PY) -m pytest

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: $(STAMP)
	$(BIN)/ftdata rules --output-format markdown > docs/rules.md
	$(PY) -m ftdata.cli.reference > docs/cli.md
	$(PY) scripts/screenshot_report.py

bench: $(STAMP)
	$(PY) benchmarks/lint_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info demo-report.html demo-report.json ftdata/_native*.so

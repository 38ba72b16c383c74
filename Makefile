# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export LANGGRAPH_CLI_NO_ANALYTICS := 1
export LANGGRAPH_NO_VERSION_CHECK := true

.PHONY: demo test studio bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/leadboost run --goal "Launch the trail sneaker in Spain, up to 8,000 EUR" --market ES

test: $(STAMP)
	$(BIN)/python -m pytest -q

studio: $(STAMP)
	$(BIN)/langgraph dev --no-browser --host 127.0.0.1 --port 2024

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .leadboost .pytest_cache

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

# Local server for Studio and the SDK, no outbound calls (exports above). The server refuses
# requests without credentials, so with none configured (shell or .env) it runs on a dev key.
studio: $(STAMP)
	@if [ -z "$$LEADBOOST_JWT_SECRET$$LEADBOOST_API_KEYS" ] && ! grep -qsE '^(export )?LEADBOOST_(JWT_SECRET|API_KEYS)=' .env; then \
	  export LEADBOOST_API_KEYS=dev-key:dev; \
	  echo "No LEADBOOST_JWT_SECRET or LEADBOOST_API_KEYS set: using LEADBOOST_API_KEYS=dev-key:dev."; \
	  echo "Send the header   x-api-key: dev-key   (or Authorization: Bearer dev-key)"; \
	elif [ -n "$$LEADBOOST_JWT_SECRET" ]; then \
	  echo "Send the header   Authorization: Bearer <token>   (mint one: $(BIN)/leadboost token --owner NAME --ttl 8h)"; \
	fi; \
	echo "Studio: https://smith.langchain.com/studio/?baseUrl=http://127.0.0.1:2024 (add the header in its connection settings;"; \
	echo "        if port 2024 is taken, langgraph dev picks another one: use the API URL it prints)"; \
	exec $(BIN)/langgraph dev --no-browser --host 127.0.0.1 --port 2024

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .leadboost .pytest_cache

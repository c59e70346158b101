# The two set-up commands: `make run` (the portal with worker and beat) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py demo
	DEBUG=$${DEBUG:-true} PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m portal.procfile start

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var

# The model-based test of the refresh engine, many more steps than CI (MODEL_SEED: the first).
.PHONY: soak-model
soak-model: $(STAMP)
	MODEL_STEPS=$${MODEL_STEPS:-10000} $(BIN)/python -m pytest tests/lifecycle/test_model.py -q -s

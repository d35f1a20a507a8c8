# Entry points. `make test` and `make demo` set everything up first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export OMP_NUM_THREADS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup system-packages test
setup: $(STAMP) system-packages

# Reinstalls only when a requirements file changed.
$(STAMP): requirements.txt requirements-test.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-test.txt
	touch $(STAMP)

system-packages:
	@sh tools/install_system_packages.sh

test: setup
	$(PY) -m pytest -q tests

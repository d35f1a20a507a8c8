# Entry points. `make test` and `make demo` set everything up first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup system-packages test test-fast demo
setup: $(STAMP) system-packages

# The Python version first (one line when it cannot work: tools/check_python.py says why):
# the venv's own once it exists, else $(PYTHON), which creates it.
CHECK_PYTHON = $(if $(wildcard $(PY)),$(PY),$(PYTHON)) tools/check_python.py

# Reinstalls only when a requirements file changed. The export and TensorBoard packages come
# too, so that `make test` runs the ONNX tests (they skip where onnx is missing) and the
# --tensorboard test.
$(STAMP): requirements.txt requirements-test.txt requirements-export.txt \
	    requirements-tensorboard.txt
	$(CHECK_PYTHON)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-test.txt \
	    -r requirements-export.txt -r requirements-tensorboard.txt
	touch $(STAMP)

system-packages:
	@sh tools/install_system_packages.sh

# Everything (CI). test-fast, while working, leaves out the tests marked slow (they train
# or start processes; pytest.ini): a couple of minutes on 2 cores.
test: setup
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

# The built-in default: DFN-MR (cross) on Fashion-MNIST, on the CPU, in a few minutes.
DEMO_DEPTH    ?= 26
DEMO_EPOCHS   ?= 2
DEMO_LR_STEPS ?= 1
demo: setup
	$(PY) -m data.prepare fashion-mnist
	$(PY) train_model.py --dataset=fashion-mnist --network=cross --depth=$(DEMO_DEPTH) \
	    --num-epochs=$(DEMO_EPOCHS) --lr-steps=$(DEMO_LR_STEPS) --cpu
	$(PY) show_model.py --dataset=fashion-mnist --network=cross --depth=$(DEMO_DEPTH)

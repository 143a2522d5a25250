# One command sets up and runs the main job (make bench), one sets up and passes the tests (make test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system bench test test-fast lint clean gpu-check arm-device

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[runtimes,coreml,edge,farm,predict,loadgen,dev]'
	touch $(STAMP)

setup: $(STAMP)

# Debian packages the tests use: chromium (report rendering), openssh (remote-device tests),
# postgresql, iproute2 and util-linux (farm tests: a team store and a loopback-only network namespace).
system:
	bash scripts/setup-system.sh

bench: setup
	$(BIN)/bench run --model efficientvit_m5 --backend openvino

# Two processes for the tests that can share the two cores, then the timing-sensitive ones alone;
# each part has a hard limit, so a hung test ends the run with a failure instead of stalling CI.
test: setup system arm-device
	status=0; \
	timeout -k 30 2400 $(BIN)/python -m pytest -q -ra -n 2 -m "not serial" || status=$$?; \
	timeout -k 30 1200 $(BIN)/python -m pytest -q -ra -m serial || status=$$?; \
	exit $$status

# The emulated aarch64 board the ARM tests use (tests/devices/test_arm_board.py): needs root and
# binfmt_misc; elsewhere, or when it cannot be built, those tests skip and say why.
arm-device:
	@if [ "$$(id -u)" = 0 ] && grep -qw binfmt_misc /proc/filesystems; then \
		timeout -k 30 1200 bash scripts/arm-device.sh || echo "arm-device: not started; the ARM board tests will skip"; \
	else \
		echo "arm-device: needs root and binfmt_misc; the ARM board tests will skip"; \
	fi

test-fast: setup
	$(BIN)/python -m pytest -q -ra -m "not slow"

# ruff (lint + format), mypy (the whole package, tests/gpu, scripts), the layer contract, Python 3.8 in the core
lint: setup
	$(BIN)/ruff check src tests benchmarks scripts examples
	$(BIN)/ruff format --check src tests benchmarks scripts examples
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/vermin -t=3.8- --no-tips --violations --eval-annotations src/effbench/core

gpu-check: setup
	bash scripts/gpu-check.sh

clean:
	rm -rf $(VENV) .effbench build *.egg-info src/*.egg-info

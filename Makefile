# The front door. Everything runs as root on a fresh machine: targets create
# their own virtualenv (.venv) and install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SOURCES := $(shell find cni_hostdev packaging -name '*.py' -o -name '*.spec' -o -name '*.sh' -o -name '*.c' -o -name '*.h') pyproject.toml

.PHONY: all binary test lint unit demo conformance bench profile baseline release sysdeps clean

all: binary

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# patchelf and a static libc (libc6-dev, with gcc) build the single file (packaging/unpacked.py, launcher.c);
# the tests delegate to the reference static/host-local IPAM plugins in /usr/lib/cni and watch the
# binary's syscalls with strace; `make bench` reads peak RSS with GNU time.
sysdeps:
	@command -v patchelf >/dev/null && command -v readelf >/dev/null && command -v ip >/dev/null \
	  && command -v strace >/dev/null && [ -f /usr/lib/x86_64-linux-gnu/libc.a ] \
	  && [ -x /usr/lib/cni/host-local ] && [ -x /usr/bin/time ] || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      patchelf binutils gcc libc6-dev iproute2 containernetworking-plugins time strace; }

dist/host-device: $(STAMP) $(SOURCES) | sysdeps
	packaging/freeze.sh $(PY)

binary: dist/host-device

lint: $(STAMP)
	$(PY) -m ruff check cni_hostdev tests packaging/bootstrap.py
	$(PY) -m mypy

test: binary lint | sysdeps
	$(PY) -m pytest -q -p no:cacheprovider tests

demo: binary
	tests/demo.sh dist/host-device

# Black-box suites against the frozen binary: the CNI spec, libcni (what containerd, CRI-O and
# podman embed), podman itself, and Debian's 6.1 and 6.12 kernels with virtio PCI NICs under QEMU.
conformance: binary
	conformance/run.sh --plugin dist/host-device
	conformance/qemu/run.sh --plugin dist/host-device

# COMPARE=FILE adds another single file (an older build, see `make baseline`) to the same
# interleaved run: `make bench COMPARE=build/baseline/host-device`.
COMPARE ?=
BENCH_COMPARE = $(if $(COMPARE),--compare $(COMPARE))

bench: binary | sysdeps
	$(PY) tests/perf/bench.py --binary dist/host-device --rounds 20 --parallel 20 $(BENCH_COMPARE)

# Where an exec of ours spends its time, phase by phase (launcher, bootloader, interpreter,
# imports, work step by step, exit), and what an ADD imports.
profile: binary | sysdeps
	$(PY) tests/perf/bench.py --binary dist/host-device --rounds 20 --profile --no-bench $(BENCH_COMPARE)

# An older build to compare with: the single file of commit BASELINE, in build/baseline/.
BASELINE ?= e00b2a6
baseline:
	rm -rf build/baseline-src && git worktree prune
	git worktree add --detach build/baseline-src $(BASELINE)
	$(MAKE) -C build/baseline-src binary PYTHON=$(PYTHON)
	mkdir -p build/baseline && cp build/baseline-src/dist/host-device build/baseline/host-device
	git worktree remove --force build/baseline-src

release: binary
	packaging/release.sh dist

clean:
	rm -rf build dist $(VENV) *.egg-info

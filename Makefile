# The front door. Everything runs as root on a fresh machine: targets create
# their own virtualenv (.venv) and install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Every Python package a build, a test run or a conformance run uses: exact versions and their
# hashes (pip's hash-checking mode), wheels only. pyproject.toml keeps the ranges.
LOCK := requirements.lock
SOURCES := $(shell find cni_hostdev packaging -name '*.py' -o -name '*.spec' -o -name '*.sh' -o -name '*.c' -o -name '*.h') pyproject.toml $(LOCK)

.PHONY: all binary test lint unit demo conformance bench profile tricks baseline release reproduce lock deps-check sysdeps clean

all: binary

$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install -q --require-hashes --only-binary :all: -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
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
	$(PY) -m ruff check cni_hostdev tests packaging
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
	$(PY) tests/perf/bench.py --binary dist/host-device --rounds 20 --parallel 20 --scale $(BENCH_COMPARE)

# Where an exec of ours spends its time, phase by phase (launcher, bootloader, interpreter,
# imports, work step by step, exit), and what an ADD imports.
profile: binary | sysdeps
	$(PY) tests/perf/bench.py --binary dist/host-device --rounds 20 --profile --no-bench $(BENCH_COMPARE)

# What each start-up trick saves on its own: a build with that one trick undone, for each, timed
# against the build with all of them in one interleaved run (tests/perf/tricks.py; ~8 minutes).
tricks: $(STAMP) | sysdeps
	$(PY) tests/perf/tricks.py

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

# Two fresh clones of HEAD, built one after the other at different paths: the same bytes, or the
# first member that differs.
reproduce: | sysdeps
	packaging/reproduce.sh

# Resolve the lock again: `make lock` adds what pyproject.toml now asks for and keeps every other pin;
# `make lock UPGRADE=pyroute2` moves one pin to the newest its range allows, `UPGRADE=all` all of them.
UPGRADE ?=
lock: $(STAMP)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --quiet \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_36 --custom-compile-command 'make lock' \
	  $(if $(filter all,$(UPGRADE)),--upgrade,$(addprefix --upgrade-package ,$(UPGRADE))) -o $(LOCK)

# The maintainer's tool for moving pins: the newest versions the ranges allow, tried in a scratch
# tree and environment against the loader, import-set and freeze tests. Not part of `make test`.
deps-check: $(STAMP) | sysdeps
	$(PY) packaging/deps_check.py

clean:
	rm -rf build dist $(VENV) *.egg-info

# Two commands work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
DEMO := demo_data
DEMO_QUERY := $(DEMO)/images/chelsea/original.jpg

.PHONY: venv dev demo test test-fast lint bench bench-quick bench-network bench-dask quality figures clean serve

# What the program needs (make demo, make serve): requirements.txt alone.
$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

# Development (tests, benchmarks, figures, the linter): requirements-dev.txt on top.
$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(DEV_STAMP)

venv: $(STAMP)

dev: $(DEV_STAMP)

demo: venv
	$(PY) -m demo.build_demo --out $(DEMO)/images
	$(PY) generator.py --data $(DEMO)/images --db $(DEMO)/images.db
	$(PY) main.py --db $(DEMO)/images.db
	$(PY) similarities.py $(DEMO_QUERY) --db $(DEMO)/images.db --mode embeddings --metric cosine --top-k 8 --out $(DEMO)/result.png
	$(PY) find_duplicates.py --db $(DEMO)/images.db --similar --any-orientation --json $(DEMO)/duplicates.json --out $(DEMO)/duplicates.png
	@echo "Browse the demo collection: make serve  (i.e. $(PY) app.py --db $(DEMO)/images.db), then open http://127.0.0.1:8000/"

# The web app (app.py) on the demo collection, or on yours: make serve DB=~/photos.db PORT=8001
DB ?= $(DEMO)/images.db
PORT ?= 8000
serve: venv
	$(PY) app.py --db $(DB) --port $(PORT)

# The linter .ci/run runs before the tests (rules in pyproject.toml).
lint: dev
	$(PY) -m ruff check .

# Every test, the slow end-to-end ones included (.ci/run calls this).
test: dev
	$(PY) -m pytest -q tests

# The tests not marked slow, for the edit-test loop: 38 s of CPU time (62 s wall, measured
# while other jobs kept both cores busy at load average 5).
test-fast: dev
	$(PY) -m pytest -q -m "not slow" tests

# Performance vs a seed-style reference (bench/run.py): markdown tables and JSON in bench/results/.
# bench-quick: 64 photos + search at 100k (< 3 min on a clean clone); bench: 100k-1M.
# BENCH_ARGS=--float32 keeps the network in float32 on a CPU with native bfloat16.
bench: dev
	$(PY) -m bench.run $(BENCH_ARGS)

bench-quick: dev
	$(PY) -m bench.run --quick $(BENCH_ARGS)

# The network alone, torch vs ONNX Runtime, float32/int8/bfloat16, 1-2 threads, batch 1/8/32, then
# EfficientNet-Lite0/1/2 side by side (speed, hours for 500k, quality from make quality; bench/bench_network.py).
bench-network: dev
	$(PY) -m bench.bench_network --precisions float32,int8,bfloat16

# Extraction on Dask: local vs a LocalCluster of 1 and 2 workers (bench/bench_dask.py), JSON in bench/results/.
bench-dask: dev
	$(PY) -m bench.bench_dask --images 300 --shard-size 25

# The README pictures, from the demo collection (built first if missing). Chromium (Debian)
# is only for the projector screenshot; without it that one picture is skipped.
figures: dev
	test -f $(DEMO)/images.db || $(MAKE) demo
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium) \
		|| echo "chromium not installable here: the projector screenshot will be skipped"
	$(PY) -m tools.figures --db $(DEMO)/images.db --query $(DEMO_QUERY) --out docs/figures

# Retrieval quality on packaged photos (Debian packages; see bench/quality.py). Prints the
# tables (first issue 21's: framings, search vectors, query expansion, Lite0/1/2 and their cost,
# per set) and writes bench/results/quality.{json,md}. Skipped where apt is unavailable.
QUALITY_PACKAGES := tuxpaint-stamps-default plasma-workspace-wallpapers gnome-backgrounds mate-backgrounds \
	ukui-wallpapers lomiri-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04
quality: dev
	@if command -v apt-get >/dev/null 2>&1; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q --no-install-recommends $(QUALITY_PACKAGES) >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends $(QUALITY_PACKAGES) >/dev/null; } || \
		echo "make quality: could not apt-get install $(QUALITY_PACKAGES) (not root?)"; \
	fi; \
	if [ -d /usr/share/tuxpaint/stamps ]; then $(PY) -m bench.quality && $(PY) -m bench.quality_duplicates && $(PY) -m bench.quality_kinds; \
	else echo "make quality: skipped: tuxpaint-stamps-default is not installed and apt-get could not install it"; fi

clean:
	rm -rf $(DEMO) .pytest_cache

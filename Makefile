# Two commands work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := demo_data
DEMO_QUERY := $(DEMO)/images/chelsea/original.jpg

.PHONY: venv demo test bench bench-quick quality figures clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(PY) demo/build_demo.py --out $(DEMO)/images
	$(PY) generator.py --data $(DEMO)/images --db $(DEMO)/images.db
	$(PY) main.py --db $(DEMO)/images.db
	$(PY) similarities.py $(DEMO_QUERY) --db $(DEMO)/images.db --mode embeddings --metric cosine --top-k 8 --out $(DEMO)/result.png

test: venv
	$(PY) -m pytest -q tests

# The README pictures, from the demo collection (built first if missing).
figures: venv
	test -f $(DEMO)/images.db || $(MAKE) demo
	$(PY) -m viz.figures --db $(DEMO)/images.db --query $(DEMO_QUERY) --out docs/figures

clean:
	rm -rf $(DEMO) .pytest_cache

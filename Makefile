# Every routine step. `make demo` and `make test` do all set-up on a fresh clone.
PY      := .venv/bin/python
VENV    := .venv/.installed
CDK     := node_modules/.bin/cdk
NODE    := node_modules/.installed
# Node 20 is past jsii's end of life: this variable (listing the major) silences its banner.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

LAYER   := build/powertools-layer

.PHONY: setup demo test test-fast lint synth bench clean powertools-layer browser compiler ui screenshots runner

setup: $(VENV) $(NODE)

# The CDK CLI and asl-validator (which `make test` runs), pinned in package.json and
# package-lock.json.
$(NODE): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE)

$(VENV): requirements.txt constraints.txt pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -r requirements.txt -c constraints.txt
	.venv/bin/pip install --quiet -e '.[local]' -c constraints.txt
	touch $(VENV)

demo: $(VENV)
	.venv/bin/fanout local examples/specs/years.json

# The infra tests run cfn-lint (requirements.txt) and asl-validator (package.json) too.
test: $(VENV) $(NODE) browser compiler lint
	$(PY) -m pytest -n 2 -q

# The dashboard's browser tests drive Debian's chromium (Playwright cannot download a
# browser here). Installed where apt-get is available and we are root (CI); elsewhere the
# browser tests skip with a one-line reason when no Chromium is found.
browser:
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 \
	  || [ "$$(id -u)" != 0 ] || (apt-get update -qq && apt-get install -y -qq chromium)

# tests/runner build the packed task's runner with gcc -static (libc6-dev's static libc):
# installed as the browser is, where apt-get is available and we are root.
compiler:
	@command -v gcc >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 \
	  || [ "$$(id -u)" != 0 ] || (apt-get update -qq && apt-get install -y -qq gcc libc6-dev)

ui: $(VENV)
	.venv/bin/fanout ui

# The README's pictures of the dashboard, from a real local run.
screenshots: $(VENV) browser
	$(PY) docs/screenshots.py

test-fast: $(VENV)
	$(PY) -m pytest -q -m "not slow"

lint: $(VENV)
	.venv/bin/ruff check .
	.venv/bin/mypy fanout lambdas

synth: $(VENV) $(NODE)
	$(CDK) synth --quiet

# For powertools.bundle (regions without the public layer): the layer's packages built for
# the functions' runtime, python3.12 on arm64; the synth publishes this folder as a layer.
powertools-layer: $(VENV)
	rm -rf $(LAYER)
	.venv/bin/pip install --quiet --no-deps --no-compile --only-binary=:all: \
	  --platform manylinux2014_aarch64 --implementation cp --python-version 3.12 \
	  --target $(LAYER)/python -r requirements-layer.txt -c constraints.txt
	du -sh $(LAYER)

# The packed task's runner (docs/decisions/0021), as its image builds it: static, no libs.
# tests/runner compile it the same way into a temporary folder.
runner: build/runner

build/runner: runner/runner.c
	mkdir -p build
	gcc -static -O2 -Wall -Wextra -Werror -o $@ $<

bench: $(VENV)
	$(PY) bench/run_all.py

clean:
	rm -rf .venv cdk.out node_modules build

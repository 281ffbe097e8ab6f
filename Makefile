# Every routine step. `make demo` and `make test` do all set-up on a fresh clone.
PY      := .venv/bin/python
VENV    := .venv/.installed
CDK     := node_modules/.bin/cdk
# Node 20 is past jsii's end of life: this variable (listing the major) silences its banner.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: setup demo test test-fast lint synth bench clean

setup: $(VENV) $(CDK)

# The CDK CLI pinned in package.json / package-lock.json.
$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(CDK)

$(VENV): requirements.txt constraints.txt pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -r requirements.txt -c constraints.txt
	.venv/bin/pip install --quiet -e '.[local]' -c constraints.txt
	touch $(VENV)

demo: $(VENV)
	.venv/bin/fanout local examples/specs/years.json

test: $(VENV) $(CDK) lint
	$(PY) -m pytest -n 2 -q

test-fast: $(VENV)
	$(PY) -m pytest -q -m "not slow"

lint: $(VENV)
	.venv/bin/ruff check .
	.venv/bin/mypy fanout lambdas

synth: $(VENV) $(CDK)
	$(CDK) synth --quiet

bench: $(VENV)
	$(PY) bench/run_all.py

clean:
	rm -rf .venv cdk.out node_modules

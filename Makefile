# The two set-up commands: `make run` and `make test`. Everything else is a convenience.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/plexspaces-target

.PHONY: run test tools lint bench bench-quick bench-node

# The Python tools the tests run (grpcio-tools, schemathesis, pytest), pinned in
# tests/requirements.txt, and the Python SDK from this clone (its componentize-py is
# pinned in sdks/python/pyproject.toml). Tests build Python actors with this venv's Python.
VENV ?= $(HOME)/.cache/plexspaces-venv
export PLEXSPACES_PYTHON ?= $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# A node on the embedded defaults, serving the example actors (Ctrl-C stops it).
run:
	cargo run --release -p plexspaces-cli -- start

# Every test of the workspace's default members (the peer benchmarks are not among them), and
# the Python and TypeScript SDKs' own tests (the TypeScript one type-checked first).
test: tools
	$(VENV)/bin/python -m pytest -q sdks/python/tests
	cd sdks/typescript && node_modules/.bin/tsc --noEmit -p . && node bin/plexspaces-ts.mjs test test/*.test.ts
	cargo test --locked

# What the tests need beyond cargo: promtool (Debian package prometheus), strace, the Python tools,
# the TypeScript SDK's pinned tools (npm ci: esbuild, componentize-js, jco, typescript), and the
# wasm32-wasip2 target (the Rust guest component the tests build).
tools: $(VENV)/.requirements.txt sdks/typescript/node_modules/.package-lock.json
	@command -v promtool >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends prometheus; }
	@command -v strace >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends strace; }
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

sdks/typescript/node_modules/.package-lock.json: sdks/typescript/package-lock.json
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm; }
	cd sdks/typescript && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/.requirements.txt: tests/requirements.txt sdks/python/pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/requirements.txt
	$(VENV)/bin/pip install -q ./sdks/python
	cp tests/requirements.txt $@

lint:
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings

# Side-by-side benchmarks against actix, ractor, kameo and bare tokio (several minutes).
bench:
	cargo bench --locked -p plexspaces-benches --bench actors

bench-quick:
	cargo bench --locked -p plexspaces-benches --bench actors -- --quick

# The node's HTTP and gRPC benchmarks against a plain axum route and a bare tonic service
# (wrk from Debian; about 5 minutes).
bench-node:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	python3 benches/node.py

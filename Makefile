# The two set-up commands: `make run` and `make test`. Everything else is a convenience.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/plexspaces-target

.PHONY: run test lint bench bench-quick

# Until the node lands, `run` tours the actor runtime with an example.
run:
	cargo run --release -p plexspaces-core --example quickstart

# Every test of the workspace's default members (the peer benchmarks are not among them).
test:
	cargo test --locked

lint:
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings

# Side-by-side benchmarks against actix, ractor, kameo and bare tokio (several minutes).
bench:
	cargo bench --locked -p plexspaces-benches --bench actors

bench-quick:
	cargo bench --locked -p plexspaces-benches --bench actors -- --quick

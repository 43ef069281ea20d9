# The two set-up commands: `make run` and `make test`. Everything else is a convenience.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/plexspaces-target

.PHONY: run test lint bench bench-quick

# A node on the embedded defaults, serving the example actors (Ctrl-C stops it).
run:
	cargo run --release -p plexspaces-cli -- start

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

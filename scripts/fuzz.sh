#!/usr/bin/env bash
# Long fuzz run of the parsers (proptest; cargo-fuzz needs nightly, which we lack):
# FUZZ_CASES cases per property (default 2,000,000; five properties, so 10 million
# executions in all). Release build for speed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/workos-sync-target}"
export FUZZ_CASES="${FUZZ_CASES:-2000000}"
time cargo test --release --locked -p workos-sync-core --test fuzz -- --nocapture --test-threads 2
echo "fuzz: $FUZZ_CASES cases x 5 properties, no failure"

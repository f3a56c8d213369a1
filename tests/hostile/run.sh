#!/usr/bin/env bash
# Every reader and builder on hostile input, under a 4 GiB address-space limit
# (`ulimit -v 4194304`) and 60 s per test binary: each test passes only if every hostile
# file, header, config and call ends in `Ok` or an `Err` — a panic fails the test, an abort
# on a failed allocation kills the binary, and a run past 60 s is stopped by `timeout`.
#
#   bash tests/hostile/run.sh            (from anywhere; CI runs it)
set -euo pipefail
cd "$(dirname "$0")/../.."

binaries=(hostile_npy hostile_safetensors hostile_word_vectors hostile_configs hostile_calls
  atomic_saves robustness)

# Build outside the limit: the compiler needs more address space than the tests do.
cargo test --locked --quiet --no-run "${binaries[@]/#/--test=}" >/dev/null 2>&1 ||
  cargo test --locked --no-run "${binaries[@]/#/--test=}"

for binary in "${binaries[@]}"; do
  echo "-- $binary (ulimit -v 4194304, timeout 60 s)"
  if ! (ulimit -v 4194304 && timeout 60 cargo test --locked --quiet --test "$binary"); then
    echo "hostile inputs: $binary failed, aborted or ran past 60 s" >&2
    exit 1
  fi
done
echo "hostile inputs: every reader returned Ok or Err within the limits"

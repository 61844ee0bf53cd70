#!/usr/bin/env bash
# The CI fuzz step: every target for a few seconds (default 5 s each: 10 targets = 50 s of
# fuzzing, plus the build). Installs the nightly toolchain and cargo-fuzz if they are missing.
#
# usage: fuzz/ci.sh [SECONDS_PER_TARGET]
# Exits non-zero if any target crashes or fails to build.
set -euo pipefail

cd "$(dirname "$0")"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
exec ./run.sh --no-grow "${1:-5}"

#!/usr/bin/env bash
# Build every fuzz target, then run each in turn for SECONDS (per target).
#
# usage: fuzz/run.sh [--seeds] [--no-grow] [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  how long EACH target runs (default 60); the total is that times the
#                       number of targets (10 targets x 60 s = 10 min), plus the build.
#   TARGET...           only these targets (default: all, see `cargo fuzz list`).
#   --seeds             first (re)write the generated seed inputs into fuzz/corpus/<target>/
#                       (existing files are kept).
#   --no-grow           read fuzz/corpus/ but write new inputs to a temp dir, so the work tree
#                       stays clean (for CI).
#
# Exits non-zero if any target finds a crash (the input is left in fuzz/artifacts/<target>/)
# or fails to build. Needs the nightly toolchain and cargo-fuzz (fuzz/ci.sh installs it).
# Targets run without a sanitizer (the decoders are safe Rust; ASan only slows them down)
# and with debug assertions on, so arithmetic overflow counts as a crash.
# Each run's libFuzzer log is kept in fuzz/artifacts/<target>.log (with --no-grow, in a temp
# dir that goes away); a summary is printed at the end. Set FUZZ_NICE=0 to run at normal priority (default: nice 19).
set -uo pipefail

cd "$(dirname "$0")/.."
seeds=0
grow=1
while [[ "${1:-}" == --* ]]; do
    case "$1" in
        --seeds) seeds=1 ;;
        --no-grow) grow=0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
secs="${1:-60}"
shift || true
if ! [[ "$secs" =~ ^[0-9]+$ ]] || (( secs < 1 )); then
    echo "usage: fuzz/run.sh [--seeds] [--no-grow] [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
nice_cmd=(nice -n "${FUZZ_NICE:-19}")
fuzz=("${nice_cmd[@]}" cargo +nightly fuzz)
flags=(--sanitizer none --debug-assertions)

targets=("$@")
if (( ${#targets[@]} == 0 )); then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
echo "fuzz: ${#targets[@]} targets x ${secs} s = $(( ${#targets[@]} * secs )) s of fuzzing"

if ! "${fuzz[@]}" build "${flags[@]}"; then
    echo "fuzz: build failed" >&2
    exit 1
fi

mkdir -p fuzz/artifacts
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    log="fuzz/artifacts/$t.log"
    if (( ! grow )); then
        # A short CI pass must not overwrite the log of a long run.
        log="$scratch/$t.log"
    fi
    env_seeds=()
    if (( seeds )); then
        env_seeds=(env "CHAIN_TUI_FUZZ_SEEDS=$PWD/fuzz/corpus")
    fi
    start=$(date +%s)
    dirs=("fuzz/corpus/$t")
    if (( ! grow )); then
        mkdir -p "$scratch/$t"
        dirs=("$scratch/$t" "fuzz/corpus/$t")
    fi
    "${env_seeds[@]}" "${fuzz[@]}" run "${flags[@]}" "$t" "${dirs[@]}" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    if (( rc != 0 )); then
        failed+=("$t")
        echo "fuzz: $t FAILED (exit $rc), see $log and fuzz/artifacts/$t/" >&2
        tail -n 30 "$log" >&2
    fi
    summary+=("$(printf '%-14s %-6s %6ss %12s execs %6s corpus files' "$t" \
        "$( ((rc == 0)) && echo ok || echo CRASH)" "$took" "${runs:-?}" "$corpus")")
done

printf '%s\n' "${summary[@]}"
if (( ${#failed[@]} > 0 )); then
    echo "fuzz: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: no crashes"

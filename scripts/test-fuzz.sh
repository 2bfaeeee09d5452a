#!/usr/bin/env bash
# Fuzz smoke: builds the cargo-fuzz targets in fuzz/ (nightly) and runs each for a bounded
# time over its committed seed corpus (fuzz/corpus/<t>) and every past crash
# (fuzz/regressions/<t>). Fails on any crash, assertion, leak or timeout.
#
#   FUZZ_SECONDS=N      seconds per target (default 10); FUZZ_SECONDS=300 is the long run
#   FUZZ_TARGETS="a b"  only these targets (default: all of them)
#   FUZZ_SANITIZER=s    address (default) or none (faster build and runs, no ASan)
#   FERRY_SKIP_FUZZ=1   skip, saying so (a machine without nightly)
#
# Needs the nightly toolchain and cargo-fuzz (scripts/install-deps.sh installs both). The
# corpus a run grows goes to fuzz/corpus-grown/<t> (not committed; reused by later runs);
# a crash lands in fuzz/artifacts/<t>/ (see fuzz/README.md to minimise and keep it).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${FERRY_SKIP_FUZZ:-0}" = 1 ]; then
  echo "fuzz: SKIPPED (FERRY_SKIP_FUZZ=1)"
  exit 0
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: FAILED: the nightly toolchain is missing." >&2
  echo "  install it: rustup toolchain install nightly --profile minimal (scripts/install-deps.sh does)" >&2
  echo "  or skip fuzzing on this machine: FERRY_SKIP_FUZZ=1" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: FAILED: cargo-fuzz is missing." >&2
  echo "  install it: cargo install cargo-fuzz --locked (scripts/install-deps.sh does)" >&2
  echo "  or skip fuzzing on this machine: FERRY_SKIP_FUZZ=1" >&2
  exit 1
fi

secs="${FUZZ_SECONDS:-10}"
sanitizer="${FUZZ_SANITIZER:-address}"
root="$PWD/fuzz"
# cargo fuzz has no --locked: check here that fuzz/Cargo.lock needs no change.
cargo +nightly metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
read -r -a targets <<<"${FUZZ_TARGETS:-$(cd fuzz && cargo +nightly fuzz list | tr '\n' ' ')}"

start=$(date +%s)
(cd fuzz && cargo +nightly fuzz build --sanitizer "$sanitizer")
echo "fuzz: built ${#targets[@]} targets in $(( $(date +%s) - start )) s (sanitizer $sanitizer)"

summary=()
for t in "${targets[@]}"; do
  dirs=("$root/corpus-grown/$t" "$root/corpus/$t")
  mkdir -p "$root/corpus-grown/$t" "$root/artifacts/$t"
  [ -d "$root/regressions/$t" ] && dirs+=("$root/regressions/$t")
  dict=()
  case "$t" in
    signal | peer_frame) dict=("-dict=$root/dicts/json.dict") ;;
    rel_path) dict=("-dict=$root/dicts/$t.dict") ;;
  esac
  # Not under artifacts/: cargo fuzz names the newest file there as the failing input.
  mkdir -p "$root/target/logs"
  log="$root/target/logs/$t.log"
  echo "fuzz: $t for ${secs}s"
  # The first corpus dir is the one libFuzzer adds new inputs to: the ignored one.
  if ! (cd fuzz && cargo +nightly fuzz run --sanitizer "$sanitizer" "$t" "${dirs[@]}" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      "${dict[@]}" -artifact_prefix="$root/artifacts/$t/") >"$log" 2>&1; then
    grep -a -m 1 -A 30 -E 'panicked at|ERROR: (AddressSanitizer|libFuzzer)' "$log" >&2 || tail -c 4000 "$log" >&2
    echo "fuzz: FAILED: $t crashed; the input is in fuzz/artifacts/$t/ (full log: $log)" >&2
    exit 1
  fi
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  summary+=("$t: ${execs:-?} execs, ${rate:-?}/s; ${done_line:-no DONE line}")
done
printf 'fuzz: %s\n' "${summary[@]}"
echo "fuzz: ok, ${#targets[@]} targets x ${secs}s, no crashes ($(( $(date +%s) - start )) s)"

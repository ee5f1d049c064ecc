#!/usr/bin/env bash
# Run the libFuzzer targets: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Configures (once) and builds build-fuzz with clang, SEMDRAW_FUZZ=ON and every library
# instrumented (-fsanitize=fuzzer-no-link,address,undefined), replays each target's regression
# inputs, then fuzzes each target for SECONDS_PER_TARGET (default 600) starting from its
# committed corpus. New inputs go to a temporary corpus, so runs never grow the committed one.
# Exits non-zero when anything is found (a crash, sanitizer report, leak, timeout or
# out-of-memory) and says where the input that triggered it was saved. Needs clang, its
# libFuzzer runtime and libomp, and llvm-symbolizer for readable stacks (Debian: clang
# libclang-rt-dev libomp-dev llvm).
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_OUT (logs and crash inputs; default
# $FUZZ_BUILD_DIR/fuzz-out), FUZZ_KEEP_CORPUS=1 keeps the grown corpus next to the logs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
all_targets=(fuzz_envelope fuzz_safetensors fuzz_scene fuzz_tokenizer fuzz_png fuzz_lora)

seconds=${1:-600}
[ $# -gt 0 ] && shift
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]  (targets: ${all_targets[*]})" >&2
  exit 2
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target $t (${all_targets[*]})" >&2; exit 2; }
done

# The longest input each target is given: a control message with a 256x256 mask, a small
# safetensors/LoRA file, a scene file, a prompt of the daemon's 4096-byte limit, a mask PNG.
max_len() {
  case $1 in
    fuzz_envelope) echo 65536 ;;
    fuzz_safetensors) echo 65536 ;;
    fuzz_scene) echo 16384 ;;
    fuzz_tokenizer) echo 4096 ;;
    fuzz_png) echo 32768 ;;
    fuzz_lora) echo 65536 ;;
  esac
}

command -v clang >/dev/null || { echo "fuzz.sh: clang not found (apt-get install clang libclang-rt-dev libomp-dev llvm)" >&2; exit 2; }
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
case $build in /*) ;; *) build=$root/$build ;; esac
out=${FUZZ_OUT:-$build/fuzz-out}
start=$(date +%s)
if [ ! -f "$build/CMakeCache.txt" ]; then
  # Werror off: a warning only clang gives, anywhere in the tree, must not stop a fuzz run (the
  # gcc builds keep -Werror); clang does not know gcc's -Wno-format-truncation. The CUDA backend
  # is not part of what is fuzzed.
  CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEMDRAW_FUZZ=ON \
    -DSEMDRAW_WERROR=OFF -DSEMDRAW_CUDA=OFF \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -Wno-unknown-warning-option" \
    >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
echo "fuzz.sh: built in $(( $(date +%s) - start )) s"

# One thread for OpenBLAS/OpenMP (LoRA merges are tiny); sanitizer reports stop the run with a
# stack; the scene parser opens whatever paths an input names, so stdin is /dev/null, not a tty.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$out"
failed=()

# Regression inputs first: each must run clean (libFuzzer runs file arguments once each).
for t in "${targets[@]}"; do
  reg=$root/tests/fuzz/regression/$t
  mapfile -t files < <(find "$reg" -type f ! -name README.md 2>/dev/null | sort)
  [ ${#files[@]} -gt 0 ] || continue
  if "$build/tests/fuzz/$t" -rss_limit_mb=2048 -timeout=10 "${files[@]}" >"$out/$t.regression.log" 2>&1 </dev/null; then
    echo "$t: ${#files[@]} regression inputs ok"
  else
    echo "$t: a regression input fails again: see $out/$t.regression.log" >&2
    failed+=("$t")
  fi
done

summary=()
for t in "${targets[@]}"; do
  work=$(mktemp -d "${TMPDIR:-/tmp}/semd-$t.XXXXXX")
  mkdir -p "$work/corpus" "$out/$t"
  seeds=("$root/tests/fuzz/corpus/$t")
  [ -d "$root/tests/fuzz/regression/$t" ] && seeds+=("$root/tests/fuzz/regression/$t")
  log=$out/$t.log
  echo "$t: fuzzing for $seconds s (log: $log)"
  rc=0
  # timeout: a backstop should libFuzzer itself hang past -max_total_time.
  timeout --signal=KILL $((seconds + 300)) \
    "$build/tests/fuzz/$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$out/$t/" \
      "$work/corpus" "${seeds[@]}" >"$log" 2>&1 </dev/null || rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$done_line")
  if [ "$rc" -ne 0 ]; then
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "$t: FINDING (exit $rc): input saved at ${artifact:-"(none; see the log)"}; log: $log" >&2
    grep -m3 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" >&2 || true
    failed+=("$t")
  fi
  summary+=("$(printf '%-17s %6s %10s %7s %12s %6s %7s %s' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "${corp:-?}" "${cov:-?}" "${ft:-?}" \
                "$([ "$rc" -eq 0 ] && echo none || echo FINDING)")")
  if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then
    rm -rf "$out/$t.corpus" && mv "$work/corpus" "$out/$t.corpus"
  fi
  rm -rf "$work"
done

echo
printf '%-17s %6s %10s %7s %12s %6s %7s %s\n' target seconds execs exec/s corpus cov ft findings
printf '%s\n' "${summary[@]}"
echo "fuzz.sh: $(( $(date +%s) - start )) s in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]} (inputs under $out/<target>/)" >&2
  exit 1
fi

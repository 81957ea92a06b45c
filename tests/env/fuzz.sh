#!/usr/bin/env bash
# A short, bounded run of every cargo-fuzz target in fuzz/ (KVOP_FUZZ_SECONDS each,
# default 20, all at once): the manifest loader, the name validators, and the two YAML
# paths read against each other (yaml_paths). Installs cargo-fuzz into the cache once.
# Exits non-zero if any target crashes, with the reproducer's path and the command that
# re-runs it.
set -euo pipefail

cargo_fuzz_version=0.13.2
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
cache="${KVOP_CACHE:-$HOME/.cache/kvop-test}"
seconds="${KVOP_FUZZ_SECONDS:-20}"

cargo_fuzz_root="$cache/cargo-fuzz"
export PATH="$cargo_fuzz_root/bin:$PATH"
if ! cargo-fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $cargo_fuzz_version"; then
  echo "installing cargo-fuzz $cargo_fuzz_version into $cargo_fuzz_root" >&2
  cargo install --locked --quiet cargo-fuzz --version "$cargo_fuzz_version" --root "$cargo_fuzz_root"
fi

# No AddressSanitizer: kvop and its reference YAML parser (serde-saphyr, granit-parser)
# forbid unsafe code, so ASan would mostly hunt bugs that cannot be there, at a sixth of
# the inputs per second and a third more build time. The fast YAML path's libyaml
# (unsafe-libyaml) is unsafe code; it is the C library translated line by line, which
# OSS-Fuzz fuzzes with sanitizers upstream. Panics, aborts, stack overflows, hangs,
# runaway memory and every difference between the two YAML paths are still caught. Without a sanitizer cargo-fuzz passes no
# nightly-only flag, so the default (stable) toolchain builds it, with or without nightly.
build_options=(--sanitizer none)
# A fresh CI clone has no fuzz/target/: keep the instrumented build in the cache so warm
# runs rebuild only kvop itself. Its own directory: the flags differ from the main build's.
if [[ -n "${CI:-}" ]]; then
  build_options+=(--target-dir "$cache/fuzz-target")
fi

build=(cargo fuzz build "${build_options[@]}")
echo "building the fuzz targets: ${build[*]}" >&2
"${build[@]}" >&2

mapfile -t targets < <(cargo fuzz list)
declare -A runs
for target in "${targets[@]}"; do
  # The corpus grows in the cache from run to run; the checked-in seeds stay untouched.
  corpus="$cache/fuzz-corpus/$target"
  artifacts="$cache/fuzz-artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  cp -- fuzz/seeds/"$target"/* "$corpus/"
  echo "fuzzing $target for ${seconds}s (corpus $corpus, log $artifacts/last-run.log)" >&2
  # Side by side, one core each: the run takes KVOP_FUZZ_SECONDS, not that times the
  # number of targets. -timeout: an input that takes seconds is a hang, not a slow run.
  cargo fuzz run "${build_options[@]}" "$target" "$corpus" -- \
    -max_total_time="$seconds" -timeout=10 -artifact_prefix="$artifacts/" \
    >"$artifacts/last-run.log" 2>&1 &
  runs[$target]=$!
done

failed=0
for target in "${targets[@]}"; do
  log="$cache/fuzz-artifacts/$target/last-run.log"
  if wait "${runs[$target]}"; then
    echo "$target: $(grep -E '^Done [0-9]+ runs' "$log" || echo "done, see $log")" >&2
    continue
  fi
  failed=1
  # The panic and its backtrace, or libFuzzer's report of a stack overflow, a hang or an
  # OOM; not libFuzzer's own stack of the abort that follows a panic.
  awk '/panicked at/ { panic = 1 } /panicked at|overflowed its stack|ERROR: libFuzzer/ { found = 1 }
    found { print } panic && /deadly signal/ { exit }' "$log" | head -n 80 >&2
  reproducer="$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | cut -d' ' -f5)"
  echo "error: fuzz target $target failed; reproducer: ${reproducer:-none written, see $log}" >&2
  rerun=(cargo fuzz run "${build_options[@]}" "$target" "$reproducer")
  echo "re-run it: (cd $repo && ${rerun[*]})" >&2
done
if ((failed)); then
  exit 1
fi
echo "fuzzed ${#targets[@]} targets for ${seconds}s each, no crash" >&2

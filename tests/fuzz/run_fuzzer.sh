#!/usr/bin/env bash
# Runs one libFuzzer target for SECONDS on a temporary copy of its corpus, so
# the repository is never written; fails on any crash, leak, timeout or
# out-of-memory, leaving the input in ARTIFACT_DIR.
# Usage: run_fuzzer.sh FUZZER CORPUS_DIR ARTIFACT_DIR SECONDS
set -euo pipefail
fuzzer=$(readlink -f "$1") corpus=$2 artifacts=$3 seconds=$4
mkdir -p "$artifacts"
artifacts=$(cd "$artifacts" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/plasma-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
if [ -d "$corpus" ]; then cp -R "$corpus/." "$work/corpus/"; fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$work"
echo "$(basename "$fuzzer"): $(ls "$work/corpus" | wc -l) corpus inputs, ${seconds} s"
status=0
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$work/corpus" >"$work/log" 2>&1 || status=$?
# The summary, or the whole report on failure.
if [ "$status" -ne 0 ]; then
  cat "$work/log"
  echo "FAILED (exit $status); reproducer in $artifacts/:"
  ls -l "$artifacts/"
  exit "$status"
fi
grep -E '^(#[0-9]+ +DONE|stat::|Done )' "$work/log" || tail -n 5 "$work/log"

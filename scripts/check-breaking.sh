#!/usr/bin/env bash
# Runs `buf breaking` against the released contract: the commit named in proto/BREAKING_BASELINE
# (the main that the current work started from). Each session that changes the contract keeps
# the baseline at the previous main; see docs/contract.md.
set -euo pipefail
cd "$(dirname "$0")/.."
baseline="$(tr -d '[:space:]' < proto/BREAKING_BASELINE 2>/dev/null || true)"
if [ -z "$baseline" ]; then
  echo "buf breaking: no baseline recorded yet"
  exit 0
fi
if ! git cat-file -e "$baseline^{commit}" 2>/dev/null; then
  echo "buf breaking: baseline $baseline is not in this clone's history" >&2
  exit 1
fi
npx buf breaking --against ".git#ref=$baseline"
echo "buf breaking: no breaking change since $baseline"

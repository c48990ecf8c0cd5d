#!/usr/bin/env bash
# ./repo with --recompute added to every train command: tests/run_golden.sh runs the goldens through
# it (REPO=tests/recompute_wrapper.sh), so activation recomputation must give the golden results too
here=$(cd "$(dirname "$0")/.." && pwd)
# and the output head in chunks of 3 rows (REPO_HEAD_ROWS), so chunking is exercised as well
if [ "${1:-}" = train ]; then shift; REPO_HEAD_ROWS=3 exec "$here/repo" train --recompute "$@"; fi
exec "$here/repo" "$@"

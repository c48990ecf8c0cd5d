#!/bin/sh
# Every function docs/walkthrough.md cites as `name()` is defined in repo.c (a line at column 0 that
# names it before "(" and is not a prototype). Also checks itself on a made-up source.
#   sh tests/exercises/test_walkthrough.sh [DOC [SOURCE]]
# Prints PASS/FAIL lines and "N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
doc=${1:-docs/walkthrough.md}; src=${2:-repo.c}
pass=0; fail=0

# defined NAME [FILE]: a line at column 0, comments dropped, naming it before "(" and not ending in ";"
defined() { sed 's://.*$::; s/[[:space:]]*$//' "${2:-$src}" | grep -Eq "^[A-Za-z_].*[^A-Za-z0-9_]$1\(.*[^;]\$"; }

names=$(grep -o '`[A-Za-z_][A-Za-z0-9_]*()`' "$doc" | tr -d '`()' | sort -u)
count=0
for f in $names; do
    count=$((count + 1))
    if defined "$f"; then pass=$((pass + 1))
    else echo "FAIL $doc cites $f(), which $src does not define"; fail=$((fail + 1)); fi
done
if [ "$count" -ge 40 ]; then echo "PASS $doc cites $count functions; $pass of them are defined in $src"; pass=$((pass + 1))
else echo "FAIL $doc cites only $count functions as \`name()\` (expected the whole path, 40 or more)"; fail=$((fail + 1)); fi
# the check can fail: a name that is absent, only declared or only called is not "defined"
tmp=$(mktemp)
printf 'static int declared(void); // a prototype\nstatic void f(void) {\n    called(1);\n}\n' > "$tmp"
for fake in absent declared called; do
    if defined "$fake" "$tmp"; then echo "FAIL the check takes the $fake function as defined"; fail=$((fail + 1))
    else pass=$((pass + 1)); fi
done
if defined f "$tmp"; then pass=$((pass + 1)); else echo "FAIL the check misses a definition"; fail=$((fail + 1)); fi
rm -f "$tmp"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/bin/sh
# The course's exercises (docs/exercises/README.md): functions of repo.c between marker lines
#
#     // EXERCISE NAME: one-line description
#     static double f(...) {        <- kept in a blank copy, up to its first "{"
#         ...                       <- replaced by a TODO (and the stub, if any)
#     }
#     // END EXERCISE NAME (a blank copy has: STUB;)
#
# An exercise may cover several functions (several marked regions with the same NAME).
#
#   sh tests/exercises/exercise.sh list              NAME and description, one per line (make exercises)
#   sh tests/exercises/exercise.sh names             the names alone
#   sh tests/exercises/exercise.sh blank NAME        repo.c with NAME's functions blanked, on stdout
#   sh tests/exercises/exercise.sh make NAME OUT     OUT: a copy of the project's git-tracked files with
#                                                    NAME blanked in repo.c (make exercise NAME=X OUT=DIR)
#   sh tests/exercises/exercise.sh full              every golden run through ./repo_reference_kernels,
#                                                    failures only (make check-exercise-full)
set -eu
die() { echo "repo: error: $*" >&2; exit 1; }
here=$(pwd)
cd "$(dirname "$0")/../.."   # the repository root: repo.c is read from here

# The markers, read and validated by one awk program. mode list: "NAME<TAB>description" per
# exercise; mode blank: repo.c with the regions of `want` blanked (exit 3 if there is none).
markers() { # markers MODE [NAME]
    awk -v mode="$1" -v want="${2:-}" '
    function fail(msg) { printf "repo: error: repo.c:%d: %s\n", NR, msg > "/dev/stderr"; bad = 1; exit 1 }
    /^\/\/ EXERCISE / {
        if (open != "") fail("EXERCISE inside the exercise " open " (its END EXERCISE is missing)")
        if (!match($0, /^\/\/ EXERCISE [a-z][a-z0-9_]*: /)) fail("expected \"// EXERCISE name: description\"")
        open = substr($0, 13, RLENGTH - 14); desc = substr($0, RLENGTH + 1)
        if (!(open in seen)) { seen[open] = 1; order[++n] = open; about[open] = desc }
        print_region = mode == "blank" && open == want; in_sig = print_region
        if (mode == "blank") print
        next
    }
    /^\/\/ END EXERCISE/ {
        name = $4; sub(/[^a-z0-9_].*/, "", name)
        if (open == "") fail("END EXERCISE " name " without its EXERCISE line")
        if (name != open) fail("END EXERCISE " name " closes the exercise " open)
        stub = ""
        if (index($0, " (a blank copy has: ")) { stub = substr($0, index($0, " (a blank copy has: ") + 20); sub(/\)$/, "", stub) }
        if (print_region) {
            if (in_sig) fail("no \"{\" between EXERCISE " open " and its END")
            if (stub != "") print "    " stub
            print "}"
            blanked++
        }
        open = ""; print_region = 0
        if (mode == "blank") print
        next
    }
    mode != "blank" { next }
    in_sig {   # the signature, up to and including its first "{"; then the TODO
        i = index($0, "{")
        if (!i) { print; next }
        print substr($0, 1, i)
        print "    // TODO exercise " want ": write this body (docs/exercises/" want ".md); make check-exercise NAME=" want " tests it"
        in_sig = 0; next
    }
    print_region { next }
    { print }
    END {
        if (bad) exit 1
        if (open != "") { printf "repo: error: repo.c: the exercise %s has no END EXERCISE line\n", open > "/dev/stderr"; exit 1 }
        if (mode == "list") for (i = 1; i <= n; i++) printf "%s\t%s\n", order[i], about[order[i]]
        if (mode == "blank" && !blanked) exit 3
    }' repo.c
}

known() { names=$(markers list | cut -f 1) && echo "$names" | grep -qxF -- "$1"; }

cmd=${1:-}
case "$cmd" in
list)
    markers list | awk -F '\t' '{ printf "%-20s %s\n", $1, $2 }' ;;
names)
    markers list | cut -f 1 ;;
blank)
    [ $# -eq 2 ] || die "usage: sh tests/exercises/exercise.sh blank NAME"
    known "$2" || die "unknown exercise \"$2\" (make exercises lists them)"
    markers blank "$2" ;;
make)
    name=${2:-}; out=${3:-}
    [ -n "$name" ] || die "make exercise: give NAME=X (make exercises lists them)"
    known "$name" || die "make exercise: unknown exercise \"$name\" (make exercises lists them)"
    [ -n "$out" ] || die "make exercise: give OUT=DIR, a new or empty directory for the copy"
    case "$out" in /*) ;; *) out=$here/$out ;; esac
    out=${out%/}
    if [ -e "$out" ] || [ -L "$out" ]; then
        [ -d "$out" ] && [ ! -L "$out" ] || die "make exercise: OUT=$out exists and is not a directory"
        [ -z "$(ls -A "$out")" ] || die "make exercise: OUT=$out is not empty (nothing was written; pick a new directory)"
    fi
    files=$(git ls-files 2> /dev/null) || die "make exercise: not a git checkout (the copy is of git's tracked files)"
    parent=$(dirname "$out")
    mkdir -p "$parent"
    tmp=$out.tmp.$$
    trap 'rm -rf "$tmp"' EXIT
    trap 'exit 1' INT TERM
    mkdir "$tmp"
    # the working tree's tracked files (a tracked file deleted here is left out)
    echo "$files" | while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done | tar -cf - -T - | (cd "$tmp" && tar -xf -) ||
        die "make exercise: copying the tracked files into $tmp failed"
    markers blank "$name" > "$tmp/repo.c" || die "make exercise: blanking $name in repo.c failed"
    [ -d "$out" ] && rmdir "$out"
    mv "$tmp" "$out" || die "make exercise: cannot move $tmp to $out"
    trap - EXIT
    echo "wrote $out: the project with $name blanked in repo.c (grep -n 'TODO exercise' $out/repo.c)"
    echo "  read:  $out/docs/exercises/$name.md"
    echo "  test:  cd $out && make check-exercise NAME=$name      (fails until the body is right)"
    echo "  then:  make check-exercise-full NAME=$name            (the whole trainer on the golden runs)" ;;
full)
    status=0
    for g in tests/golden tests/golden_llama; do
        log=$(REPO=./repo_reference_kernels bash tests/run_golden.sh "$g" 2>&1) || status=1
        echo "$log" | grep -v '^PASS'
        echo "  ($g through ./repo_reference_kernels, the plain matmul and attention)"
    done
    [ $status -eq 0 ] && echo "PASS the whole trainer, with your function and the plain kernels, gives PyTorch's results on every golden run"
    exit $status ;;
*)
    die "usage: sh tests/exercises/exercise.sh list | names | blank NAME | make NAME OUT | full" ;;
esac

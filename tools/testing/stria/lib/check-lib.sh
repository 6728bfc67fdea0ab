# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Counting for tools/testing/stria/check (sourced by it, and by
# tests/check-runner.host, which runs these on crates made to fail).
# Every check ends up in `passed` or `failed`; nothing may fail without
# being counted, since the last line ("N passed, N failed") and the exit
# status are all that a reader of a long run looks at.

passed=0
failed=0
failures=()
start=$(date +%s)

note() { printf '\n=== %s\n' "$*"; }

count() { # name status
	if [ "$2" = 0 ]; then
		passed=$((passed + 1))
		printf 'PASS: %s\n' "$1"
	else
		failed=$((failed + 1))
		failures+=("$1")
		printf 'FAIL: %s\n' "$1"
	fi
}

# Prints the summary and exits: non-zero exactly when something failed.
finish() {
	local f
	note "summary ($(($(date +%s) - start)) s)"
	# The guard keeps an empty list from tripping `set -u` in older bash.
	for f in ${failures[@]+"${failures[@]}"}; do
		printf 'failed: %s\n' "$f"
	done
	printf '%d passed, %d failed\n' "$passed" "$failed"
	if [ "$failed" != 0 ]; then
		exit 1
	fi
	exit 0
}

# Host tests: each test case counts once.  --no-fail-fast makes cargo run
# every test binary (and the doctests) even after one of them failed.
# Cargo failing must always fail the run, so a non-zero exit that the
# failed cases do not fully account for counts once more: a crate that
# is missing or does not build, a test binary that crashed before its
# result line, one that exited non-zero after an "ok" one.  Accounted
# for means: some case failed, every binary cargo started printed its
# result line, and cargo names as failed just the binaries whose result
# line has failures.  Anything else, a change in cargo's wording
# included, errs towards one failure too many rather than one too few.
cargo_tests() { # dir
	local dir=$1 log rc p f name why
	local cases_failed=0 bins_failed=0 results=0 runs targets_failed
	if [ ! -f "$dir/Cargo.toml" ]; then
		count "cargo test in $dir (no Cargo.toml)" 1
		return
	fi
	if ! log=$(mktemp); then
		count "cargo test in $dir (no log file)" 1
		return
	fi
	(cd "$dir" && cargo test --release --no-fail-fast 2>&1) | tee "$log"
	rc=${PIPESTATUS[0]}
	while read -r p f; do
		passed=$((passed + p))
		failed=$((failed + f))
		cases_failed=$((cases_failed + f))
		results=$((results + 1))
		[ "$f" = 0 ] || bins_failed=$((bins_failed + 1))
	done < <(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$log")
	# Already counted above; named here for the summary.
	while read -r name; do
		failures+=("cargo test in $dir: $name")
	done < <(sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$log")
	runs=$(grep -Ec '^ +(Running|Doc-tests) ' "$log")
	targets_failed=$(grep -Ec '^error: (test|doctest) failed, to rerun pass ' "$log")
	if [ "$rc" != 0 ] && ! {
		[ "$cases_failed" -gt 0 ] &&
			[ "$runs" = "$results" ] &&
			[ "$targets_failed" = "$bins_failed" ]
	}; then
		why="exit $rc"
		if grep -q '^error: could not compile' "$log"; then
			why="did not build, $why"
		fi
		count "cargo test in $dir ($why)" 1
	fi
	rm -f "$log"
}

# Runs COMMAND (make -s clippy) and counts NAME passed only if it exits 0
# and printed no diagnostic.  The kernel's lints are warnings, so the
# exit status alone says nothing about them; and a build that stops
# without a diagnostic line must fail too.  rustc and clippy start each
# diagnostic at column 0: "warning: ...", "error: ...", "error[E0308]:
# ...", "warning[E0133]: ..."; indented lines are only their notes.
lint_check() { # name command...
	local name=$1 log rc lints
	shift
	if ! log=$(mktemp); then
		count "$name (no log file)" 1
		return
	fi
	"$@" >"$log" 2>&1
	rc=$?
	# Colour codes, should anything force them, would hide the column 0.
	# grep -c reads all of its input, so sed never dies of SIGPIPE here
	# (grep -q could stop early and pipefail would turn a hit into a miss).
	lints=$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
		grep -Ec '^(warning|error)(\[[A-Za-z0-9]+\])?:')
	if [ "$rc" != 0 ] || [ "${lints:-0}" != 0 ]; then
		cat "$log"
		if [ "$rc" != 0 ]; then
			printf '%s: exit %d\n' "$*" "$rc"
		fi
		count "$name" 1
	else
		count "$name" 0
	fi
	rm -f "$log"
}

#!/bin/bash
# stria.ko's KUnit suites ran at insmod (vm-run checks the KTAP in the
# kernel log); here we also read their results back through debugfs.
source "$STRIA_LIB/common.sh"

for dir in /sys/kernel/debug/kunit/stria_*; do
	[ -d "$dir" ] || die "no stria KUnit suite in debugfs"
	suite=$(basename "$dir")
	grep -q "^ok [0-9]* $suite" "$dir/results" || { cat "$dir/results"; die "$suite did not pass"; }
	echo "ok: $suite: $(grep -c '^    ok' "$dir/results") cases passed"
done

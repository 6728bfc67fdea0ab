# SPDX-License-Identifier: GPL-2.0
# Shared helpers for stria VM tests (sourced inside the guest by bash).

set -euo pipefail

# No udev in the guest: let libdevmapper make its own /dev/mapper nodes.
export DM_DISABLE_UDEV=1

read -r -a MEMBERS <<<"${STRIA_DISKS:-}"

# Print a step and keep going.
step() { printf '\n--- %s\n' "$*"; }

# Fail the test with a message.
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# Run a command that must fail with the given errno name in its one-line
# error (the helper prints "... (EBUSY)").
expect_errno() {
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then
		die "'$*' succeeded, expected $want"
	fi
	case "$out" in
	*"($want)"*) printf 'ok: %s -> %s\n' "$*" "$want" ;;
	*) die "'$*' failed with '$out', expected $want" ;;
	esac
}

# Assemble the given members (default: all) and print the volume path.
assemble() {
	local vol
	vol=$(stria assemble "${@:-${MEMBERS[@]}}")
	[ -b "$vol" ] || die "assemble printed '$vol', not a block device"
	echo "$vol"
}

# Write fresh superblocks to the given members (default: all), then
# assemble them and print the volume path.
fresh_array() {
	stria create "${@:-${MEMBERS[@]}}" >/dev/null
	assemble "$@"
}

# A numeric field of `stria status --json VOL`.
status_field() {
	local json
	json=$(stria status --json "$1")
	sed -n "s/.*\"$2\": \([0-9]*\).*/\1/p;T;q" <<<"$json"
}

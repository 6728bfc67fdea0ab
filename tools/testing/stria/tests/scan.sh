#!/bin/bash
# assemble --scan finds arrays by their superblocks: two arrays on four
# members come up with the right names and sizes; running arrays are left
# alone; an incomplete array is reported and not assembled.
source "$STRIA_LIB/common.sh"

stria create --name left "${MEMBERS[0]}" "${MEMBERS[1]}" >/dev/null
stria create --name right "${MEMBERS[2]}" "${MEMBERS[3]}" >/dev/null

step "scan assembles both"
out=$(stria assemble --scan)
echo "$out"
[ "$(grep -c '^/dev/stria' <<<"$out")" = 2 ] || die "expected two arrays"
status=$(stria status)
echo "$status"
grep -q '(left)' <<<"$status" || die "array 'left' missing from status"
grep -q '(right)' <<<"$status" || die "array 'right' missing from status"
json=$(stria status --json)
for name in left right; do
	grep -q "\"name\": \"$name\"" <<<"$json" || die "status --json lacks $name"
done

step "running arrays are left alone"
out=$(stria assemble --scan)
[ "$out" = "nothing to assemble" ] || die "second scan did: $out"

step "stop --all refuses an array in use and stops the rest"
exec 3</dev/stria0
expect_errno EBUSY stria stop --all
[ -b /dev/stria0 ] || die "the open array was stopped"
[ ! -b /dev/stria1 ] || die "the idle array was not stopped"
exec 3<&-
stria stop --all
[ "$(stria status)" = "no arrays" ] || die "arrays left after stop --all"

step "an incomplete array is not assembled"
dd if=/dev/zero of="${MEMBERS[3]}" bs=1M count=1 status=none
dd if=/dev/zero of="${MEMBERS[3]}" bs=1M count=1 seek=$(( $(blockdev --getsize64 "${MEMBERS[3]}") / 1048576 - 1 )) status=none
out=$(stria assemble --scan 2>&1)
echo "$out"
grep -q 'right.*1 of 2 members found' <<<"$out" || die "incomplete array not reported"
grep -q '^/dev/stria0: .*(left)' <<<"$out" || die "complete array not assembled"
[ ! -b /dev/stria1 ] || die "incomplete array was assembled"
stria stop /dev/stria0
echo ok

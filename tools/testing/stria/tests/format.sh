#!/bin/bash
# stria create / examine / dump on real block devices: both superblock
# copies written, every member agrees, signatures refused unless --force,
# claimed devices refused.
source "$STRIA_LIB/common.sh"

step "create on ${MEMBERS[*]}"
stria create --raid 6 --strip 128 --name vmtest "${MEMBERS[@]}"
uuid=""
for i in "${!MEMBERS[@]}"; do
	json=$(stria examine --json "${MEMBERS[$i]}")
	u=$(sed -n 's/.*"array_uuid": "\([^"]*\)".*/\1/p' <<<"$json")
	[ -n "$u" ] || die "no array uuid on ${MEMBERS[$i]}"
	[ -z "$uuid" ] || [ "$u" = "$uuid" ] || die "members disagree on the array"
	uuid=$u
	grep -q "\"member_index\": $i," <<<"$json" || die "wrong member index on ${MEMBERS[$i]}"
	grep -q '"primary": "valid' <<<"$json" || die "primary copy not valid"
	grep -q '"backup": "valid' <<<"$json" || die "backup copy not valid"
done
stria examine "${MEMBERS[0]}"
echo "ok: all members belong to $uuid"

step "dump finds no stripes on a fresh array"
out=$(stria dump "${MEMBERS[0]}" 2>/dev/null)
echo "$out"
grep -q " 0 stripe headers" <<<"$out" || die "dump found headers on a fresh array"

step "the created array assembles, members in any order"
vol=$(assemble "${MEMBERS[2]}" "${MEMBERS[0]}" "${MEMBERS[3]}" "${MEMBERS[1]}")
# The volume is as large as create recorded in the volume table.
blocks=$(stria examine "${MEMBERS[0]}" | sed -n 's/.*volume 1: vol0 \([0-9]*\) blocks.*/\1/p')
[ -n "$blocks" ] || die "examine shows no volume 1"
want=$((blocks * 4096))
size=$(blockdev --getsize64 "$vol")
[ "$size" = "$want" ] || die "volume has $size bytes, expected $want"
stria stop "$vol"
echo "ok: $size bytes"

step "assembly records itself: generation 2 in both copies of every member"
for m in "${MEMBERS[@]}"; do
	json=$(stria examine --json "$m")
	grep -q '"generation": 2,' <<<"$json" || die "$m: generation is not 2 after one assembly"
	grep -q '"primary": "valid, generation 2"' <<<"$json" || die "$m: primary copy not updated"
	grep -q '"backup": "valid, generation 2"' <<<"$json" || die "$m: backup copy not updated"
done
echo "ok"

step "signatures are refused"
expect_create_refused() {
	if out=$(stria create "$@" 2>&1); then die "create $* succeeded"; fi
	echo "ok: refused: $out"
}
expect_create_refused "${MEMBERS[@]}"
mkfs.ext4 -q -F "${MEMBERS[3]}" 2>/dev/null
stria create --force "${MEMBERS[@]}" >/dev/null
mkfs.ext4 -q -F "${MEMBERS[3]}"
out=$(stria create "${MEMBERS[3]}" "${MEMBERS[2]}" 2>&1) && die "create over ext4 succeeded"
case "$out" in *ext2/3/4*) echo "ok: $out" ;; *) die "unexpected: $out" ;; esac

step "a claimed device is refused"
mkdir -p /mnt/m
mount "${MEMBERS[3]}" /mnt/m
expect_errno EBUSY stria create --force "${MEMBERS[2]}" "${MEMBERS[3]}"
umount /mnt/m
echo ok

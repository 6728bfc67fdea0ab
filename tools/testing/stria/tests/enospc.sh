#!/bin/bash
# A pool that runs out of member space fails writes with ENOSPC, cleanly:
# no hang, nothing already written changes, reads go on, and the array
# still flushes, stops and re-assembles with the same data.
#
# Overwritten data is not reclaimed yet, so writing the volume twice over
# fills a small pool (four 64 MiB slices of the members).
source "$STRIA_LIB/common.sh"

modprobe dm-mod 2>/dev/null || true
small=()
for i in 0 1 2 3; do
	dmsetup create "small$i" --table "0 131072 linear ${MEMBERS[$i]} 0"
	small+=("/dev/mapper/small$i")
done
vol=$(fresh_array --raid 5 --strip 64 "${small[@]}")
size=$(blockdev --getsize64 "$vol")
mib=$((size / 1048576))
echo "volume: $size bytes"

step "first pass fills the volume"
head -c "$((mib * 1048576))" /dev/urandom >/tmp/a
dd if=/tmp/a of="$vol" bs=1M oflag=direct conv=fsync status=none || die "first pass failed"

step "second pass runs out of space"
head -c "$((mib * 1048576))" /dev/urandom >/tmp/b
if dd if=/tmp/b of="$vol" bs=1M oflag=direct conv=fsync 2>/tmp/err; then
	die "the pool never ran out of space"
fi
cat /tmp/err
grep -q 'No space left on device' /tmp/err || die "the write failed without ENOSPC"
done_mib=$(sed -n 's/^\([0-9]*\)+0 records out$/\1/p' /tmp/err)
[ -n "$done_mib" ] || die "cannot tell how far dd got"
echo "second pass stopped after $done_mib MiB"

# Every MiB before the failing request is new, every one after it old;
# the failing request's blocks may be either.
check_contents() {
	local what=$1
	cmp -n "$((done_mib * 1048576))" /tmp/b "$vol" || die "$what: written data changed"
	local from=$(((done_mib + 1) * 1048576))
	cmp -n "$((mib * 1048576 - from))" -i "$from:$from" /tmp/a "$vol" ||
		die "$what: data beyond the failure changed"
	dd if="$vol" of=/tmp/mid bs=1M skip="$done_mib" count=1 iflag=direct status=none ||
		die "$what: cannot read the failing request's range"
	for ((blk = 0; blk < 256; blk++)); do
		off=$((done_mib * 1048576 + blk * 4096))
		cmp -s -n 4096 -i "$((blk * 4096)):$off" /tmp/mid /tmp/b ||
			cmp -s -n 4096 -i "$((blk * 4096)):$off" /tmp/mid /tmp/a ||
			die "$what: block $blk of the failing request is neither old nor new"
	done
	echo "ok: $what"
}
check_contents "after ENOSPC"

step "reads go on, flushes succeed, later writes fail cleanly"
dd if="$vol" of=/dev/null bs=1M iflag=direct status=none || die "reading the full pool failed"
sync
blockdev --flushbufs "$vol" || die "flush after ENOSPC failed"
if dd if=/tmp/b of="$vol" bs=4k count=1 oflag=direct 2>/tmp/err; then
	die "a write into a full pool succeeded"
fi
grep -q 'No space left on device' /tmp/err || die "a later write failed without ENOSPC"
stria status "$vol"

step "same data after stop and re-assembly"
stria stop "$vol"
vol=$(assemble "${small[@]}")
check_contents "after re-assembly"
stria stop "$vol"
for i in 0 1 2 3; do dmsetup remove "small$i"; done
echo ok

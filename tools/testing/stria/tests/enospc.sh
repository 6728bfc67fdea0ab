#!/bin/bash
# A pool whose live data fills it fails writes with ENOSPC, cleanly: no
# hang, nothing already written changes, reads go on, and the array still
# flushes, stops and re-assembles with the same data.  Once data is
# discarded, its space comes back and writes succeed again.
#
# The volume is thin and larger than the pool (four 64 MiB slices of the
# members), so writing it front to back fills the pool with live data.
source "$STRIA_LIB/common.sh"

modprobe dm-mod 2>/dev/null || true
small=()
for i in 0 1 2 3; do
	dmsetup create "small$i" --table "0 131072 linear ${MEMBERS[$i]} 0"
	small+=("/dev/mapper/small$i")
done
vol=$(fresh_array --raid 5 --strip 64 "${small[@]}")
stria volume resize "$vol" --size 512M
size=$(blockdev --getsize64 "$vol")
echo "volume: $size bytes"

step "writing the volume front to back runs out of space"
head -c $((300 << 20)) /dev/urandom >/tmp/b
if dd if=/tmp/b of="$vol" bs=1M oflag=direct conv=fsync 2>/tmp/err; then
	die "the pool never ran out of space"
fi
cat /tmp/err
grep -q 'No space left on device' /tmp/err || die "the write failed without ENOSPC"
done_mib=$(sed -n 's/^\([0-9]*\)+0 records out$/\1/p' /tmp/err)
[ -n "$done_mib" ] || die "cannot tell how far dd got"
echo "stopped after $done_mib MiB"
((done_mib >= 100)) || die "only $done_mib MiB fit in a pool of 256 MiB"
stria status "$vol"

# Every MiB before the failing request is new, every one after it unwritten
# (zeros); the failing request's blocks may be either.
check_contents() {
	local what=$1
	cmp -n "$((done_mib * 1048576))" /tmp/b "$vol" || die "$what: written data changed"
	dd if="$vol" of=/tmp/mid bs=1M skip="$done_mib" count=1 iflag=direct status=none ||
		die "$what: cannot read the failing request's range"
	for ((blk = 0; blk < 256; blk++)); do
		off=$((done_mib * 1048576 + blk * 4096))
		cmp -s -n 4096 -i "$((blk * 4096)):$off" /tmp/mid /tmp/b ||
			cmp -s -n 4096 -i "$((blk * 4096)):0" /tmp/mid /dev/zero ||
			die "$what: block $blk of the failing request is neither old nor new"
	done
	cmp -n $((4 << 20)) -i "$(((done_mib + 1) << 20)):0" "$vol" /dev/zero ||
		die "$what: blocks beyond the failure are not zeros"
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
# Live data fills it: collection has nothing to gain.
stria gc "$vol" --until-free 50 || die "gc on a full pool failed"

step "same data after stop and re-assembly"
stria stop "$vol"
vol=$(assemble "${small[@]}")
check_contents "after re-assembly"

step "discarding data gives its space back"
free0=$(status_field "$vol" free_bytes)
blkdiscard -o 0 -l $((64 << 20)) "$vol" || die "blkdiscard failed"
# No flush: the stripes the discard emptied are freed once the trim records
# are durable, which the writes waiting for space make happen.
head -c $((32 << 20)) /dev/urandom >/tmp/c
dd if=/tmp/c of="$vol" bs=1M seek=$((done_mib + 1)) oflag=direct conv=fsync status=none ||
	die "writing after the discard failed"
free1=$(status_field "$vol" free_bytes)
echo "free: $free0 -> $free1 bytes, with 32 MiB written since"
((free1 - free0 >= 8 << 20)) || die "discarding 64 MiB freed only $((free1 - free0)) bytes"
cmp -n $((32 << 20)) -i 0:$(((done_mib + 1) << 20)) /tmp/c "$vol" || die "new data differs"
cmp -n $((64 << 20)) /dev/zero "$vol" || die "the discarded range is not zeros"
cmp -n $(((done_mib - 64) << 20)) -i $((64 << 20)):$((64 << 20)) /tmp/b "$vol" ||
	die "data kept beside the discard changed"
echo ok
stria stop "$vol"
for i in 0 1 2 3; do dmsetup remove "small$i"; done

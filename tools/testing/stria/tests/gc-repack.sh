#!/bin/bash
# Free-space collection repacks what fsyncs left in small mirrored stripes:
# 4 KiB writes each followed by a flush make one RAID-1 stripe apiece;
# `stria gc --until-free 100` moves their blocks into full RAID-5 stripes,
# the RAID-1 stripes go, the space they held comes back, and the data reads
# the same, also after a stop and re-assembly, with live blocks equal to
# mapped blocks.
source "$STRIA_LIB/common.sh"

vol=$(fresh_array --raid 5 --strip 64)
stria volume resize "$vol" --size 64M
n=200

step "$n scattered 4 KiB writes, each flushed"
head -c $((n * 4096)) /dev/urandom >/tmp/blocks
for ((i = 0; i < n; i++)); do
	dd if=/tmp/blocks of="$vol" bs=4096 skip=$i seek=$((i * 37)) count=1 \
		oflag=direct conv=fsync status=none || die "write $i failed"
done
stria status "$vol"
flat=$(stria status --json "$vol" | json_flat)
r1=$(sed -n 's/^0\.space\.stripes_raid1	//p' <<<"$flat")
r5=$(sed -n 's/^0\.space\.stripes_raid5	//p' <<<"$flat")
free0=$(sed -n 's/^0\.space\.free_bytes	//p' <<<"$flat")
echo "before collection: $r1 RAID-1 stripes, $r5 RAID-5, $free0 bytes free"
((r1 >= n / 2)) || die "only $r1 mirrored stripes after $n flushed writes"

# What the volume must read: zeros with the blocks at their places.
truncate -s 64M /tmp/want
for ((i = 0; i < n; i++)); do
	dd if=/tmp/blocks of=/tmp/want bs=4096 skip=$i seek=$((i * 37)) count=1 \
		conv=notrunc status=none
done
check() { # WHAT
	cmp /tmp/want "$vol" || die "$1: the volume's contents differ"
	echo "ok: $1: all $n blocks read back, the rest zeros"
}
check "before collection"

step "collection repacks them into full parity stripes"
stria gc "$vol" --until-free 100
stria status "$vol"
flat=$(stria status --json "$vol" | json_flat)
r1b=$(sed -n 's/^0\.space\.stripes_raid1	//p' <<<"$flat")
r5b=$(sed -n 's/^0\.space\.stripes_raid5	//p' <<<"$flat")
free1=$(sed -n 's/^0\.space\.free_bytes	//p' <<<"$flat")
moved=$(sed -n 's/^0\.space\.gc_moved_bytes	//p' <<<"$flat")
echo "after collection: $r1b RAID-1 stripes, $r5b RAID-5, $free1 bytes free, $moved bytes moved"
((moved >= n * 4096 / 2)) || die "collection moved only $moved bytes"
((r1b <= r1 / 10)) || die "$r1b of $r1 mirrored stripes are left"
((free1 > free0)) || die "free space did not grow ($free0 -> $free1)"
check "after collection"

step "the same after a stop and re-assembly"
stria stop "$vol"
vol=$(assemble_shuffled)
check "after re-assembly"
live=$(status_field "$vol" live_bytes)
mapped=$(status_field "$vol" mapped_blocks)
((mapped == n)) || die "$mapped blocks mapped, expected $n"
((live == mapped * 4096)) || die "live bytes $live, but $mapped blocks are mapped"
stria stop "$vol"

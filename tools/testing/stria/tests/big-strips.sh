#!/bin/bash
# Strips larger than one kernel allocation can be (8 MiB, twice the 4 MiB
# kmalloc limit) on a 3-member RAID-5 array:
#   a. random 4k writes over 32 MiB, twice (the first pass is dead after
#      the second), verified; `stria gc` moves the live blocks out of the
#      stripes and frees them; the data reads back, also after a stop and
#      re-assembly;
#   b. the superblocks' record of a clean stop erased (stria-craft), so that
#      assembly must check the data of the newest stripes, strip by strip:
#      intact, they are kept and every block reads back; with a byte of the
#      last block of a strip of the newest stripe flipped, that stripe is
#      found torn and dropped, and the array still assembles.
# 32 MiB, not more: a header holds 160 pieces, so a stripe of random 4k
# writes carries about 158 blocks however large its strips, and 3 x 1 GiB
# of 8 MiB strips hold only about 75 MiB of such data.
source "$STRIA_LIB/common.sh"

arr=("${MEMBERS[@]:0:3}")
vol=$(fresh_array --raid 5 --strip 8192 "${arr[@]}")
common=(--direct=1 --ioengine=io_uring --iodepth=16 --bs=4k --size=32M
	--verify=crc32c --verify_fatal=1 --eta=never --output=/tmp/fio.out)
# The last pass written, verified.
verify() { # WHAT
	fio --name=big --filename="$vol" --rw=randwrite --randseed=2 "${common[@]}" \
		--verify_only=1 || { cat /tmp/fio.out; die "$1: verify"; }
	echo "ok: $1"
}

step "a: two passes of random writes, then collection"
for seed in 1 2; do
	fio --name=big --filename="$vol" --rw=randwrite --randseed=$seed "${common[@]}" \
		--do_verify=1 || { cat /tmp/fio.out; die "fio pass $seed"; }
done
flat=$(stria status --json "$vol" | json_flat)
free0=$(sed -n 's/^0\.space\.free_bytes	//p' <<<"$flat")
stria gc "$vol" --until-free 100
flat=$(stria status --json "$vol" | json_flat)
free1=$(sed -n 's/^0\.space\.free_bytes	//p' <<<"$flat")
moved=$(sed -n 's/^0\.space\.gc_moved_bytes	//p' <<<"$flat")
collected=$(status_field "$vol" gc_stripes)
echo "collection: $collected stripes, $moved bytes moved, free $free0 -> $free1 bytes"
((collected > 0 && moved > 0)) || die "collection moved nothing"
((free1 > free0)) || die "free space did not grow"
verify "after collection"
stria stop "$vol"
vol=$(assemble_shuffled "${arr[@]}")
verify "after re-assembly"
stria stop "$vol"

# Offsets in the superblock (Documentation/stria-format.rst): the log
# head hint a clean stop records.
forget_clean_stop() {
	local dev
	for dev in "${arr[@]}"; do
		stria-craft sb "$dev" 112 8 0 >/dev/null    # sequence
		stria-craft sb "$dev" 120 8 0 >/dev/null    # block
		stria-craft sb "$dev" 128 1 0xff >/dev/null # member: none
	done
}

step "b: no record of a clean stop: the newest stripes are checked"
forget_clean_stop
dmesg -c >/dev/null
vol=$(assemble_shuffled "${arr[@]}")
dmesg | grep "rebuilt maps"
dmesg | grep -q ": torn (" && die "an intact stripe was taken for torn"
verify "the checked stripes kept"
# Writes of their own after the checks, so that the newest stripe holds
# nothing the verify pass needs; written whole, without a flush after.
dd if=/dev/urandom of="$vol" bs=1M count=16 seek=200 oflag=direct status=none
stria stop "$vol"
forget_clean_stop
stripe_map /tmp/map "${arr[@]}"
newest=$(tail -n1 /tmp/map/copies | cut -d' ' -f1)
read -r member lba span <<<"$(awk -v s="$newest" '$1 == s { print $3, $4, $5; exit }' /tmp/map/strips)"
((span > 1024)) || die "the newest stripe ($newest) has strips of $span blocks, not 8 MiB"
last=$((lba + span - 1))
dd if="${arr[member]}" of=/tmp/blk bs=4096 skip=$last count=1 iflag=direct status=none
printf '\x5a' | dd of=/tmp/blk bs=1 seek=100 conv=notrunc status=none
dd if=/tmp/blk of="${arr[member]}" bs=4096 seek=$last count=1 oflag=direct conv=notrunc status=none
echo "stripe $newest: block $last of member $member changed"
dmesg -c >/dev/null
vol=$(assemble_shuffled "${arr[@]}")
dmesg | grep "rebuilt maps"
dmesg | grep -q "stripe $newest: torn" || die "the damaged stripe $newest was not found torn"
echo "ok: stripe $newest found torn and dropped"
verify "the older data is intact"
stria stop "$vol"
echo ok

#!/bin/bash
# A stop returns only once nothing holds the members: right after writes
# (stripes being finished, collection queued), `stria stop` and at once
# `stria assemble`, many times over, must never find a member claimed
# (EBUSY); the data written each round reads back after the next assembly.
# The last rounds stop while an on-demand `stria gc` runs: the stop waits
# for it (or it gives up), and the assembly after it still finds the
# members free.
source "$STRIA_LIB/common.sh"

vol=$(fresh_array --raid 5 --strip 16)
rounds=25
for ((r = 0; r < rounds; r++)); do
	# Random blocks across a small range, some overwritten: written
	# stripes finish in the background, collection may be wanted.
	fio --name=burst --filename="$vol" --rw=randwrite --bs=4k --size=8M \
		--io_size=4M --iodepth=32 --ioengine=io_uring --direct=1 \
		--randseed=$r --output=/tmp/burst.out || { cat /tmp/burst.out; die "fio round $r"; }
	dd if=/dev/urandom of=/tmp/mark bs=4k count=1 status=none
	dd if=/tmp/mark of="$vol" bs=4k seek=$((4096 + r)) oflag=direct conv=notrunc status=none
	gc=
	if ((r >= rounds - 5)); then
		stria gc "$vol" --until-free 100 >/tmp/gc.out 2>&1 &
		gc=$!
		sleep 0.$((RANDOM % 5))
	fi
	stria stop "$vol" || die "round $r: stop failed"
	vol=$(stria assemble "${MEMBERS[@]}") || die "round $r: assembly right after the stop failed"
	if [ -n "$gc" ]; then
		# Done, or refused as the array went away: either is fine, a hang
		# or a crash is not.
		wait "$gc" || grep -q "ENOENT" /tmp/gc.out || { cat /tmp/gc.out; die "round $r: gc during the stop"; }
		cat /tmp/gc.out
	fi
	dd if="$vol" of=/tmp/back bs=4k skip=$((4096 + r)) count=1 iflag=direct status=none
	cmp -s /tmp/mark /tmp/back || die "round $r: the last block written before the stop is lost"
done
echo "ok: $rounds stops, each followed at once by an assembly"
stria stop "$vol"
echo ok

#!/bin/bash
# Reads racing the reuse of the space they read from. The members are
# dm-delay devices; reads of member 0 take 2 s (writes and the other
# members none), as a slow or retrying disk would: a read looks a block up,
# and its member bio then waits. Meanwhile free-space collection moves the
# block elsewhere, frees its chunk, and new writes fill that chunk. The read
# must still return the block's own data, not what was written over its
# old place: freed space waits for the reads that started before it was
# freed.
#
# Region A (2 MiB) and region B (16 MiB) are written at once, A a block at
# a time, so that a few of A's blocks are in each stripe; B is written again
# in the same order, so that those stripes hold nothing live but A and are
# what collection picks. Then B is overwritten again, flushed often, and the
# pool collected a little at a time while fio verifies A over and over at a
# queue depth of 128: most of A's blocks on the slow member are being read
# at any time.
source "$STRIA_LIB/common.sh"

slice_mib=32
slices 4 "$slice_mib"
modprobe dm-delay
sectors=$((slice_mib * 2048))
devs=()
# READ_MS...: delay of every read of member 0, 1, ... (the last for the rest).
set_delay() { # READ_MS...
	local i ms=("$@")
	for i in "${!SLICES[@]}"; do
		local d=${ms[i]:-${ms[-1]}}
		local table="0 $sectors delay ${SLICES[i]} 0 $d ${SLICES[i]} 0 0"
		if [[ -e /dev/mapper/stria-slow$i ]]; then
			dmsetup suspend "stria-slow$i"
			dmsetup load "stria-slow$i" --table "$table"
			dmsetup resume "stria-slow$i"
		else
			dmsetup create "stria-slow$i" --table "$table"
			devs+=("/dev/mapper/stria-slow$i")
		fi
	done
}
set_delay 0

vol=$(fresh_array --force --raid 5 --strip 64 "${devs[@]}")
stria volume resize "$vol" --size $((18 << 20))
a=(--filename="$vol" --direct=1 --ioengine=io_uring --bs=4k --name=a
	--offset=0 --size=2M --rw=randwrite --randseed=7 --verify=crc32c --eta=never)
# Always the same order: each pass over B kills the stripes of the one
# before in the order they were written.
b=(--filename="$vol" --direct=1 --ioengine=io_uring --bs=4k --iodepth=8
	--offset=2M --size=16M --rw=randwrite --randseed=1 --verify=crc32c
	--do_verify=0 --eta=never)

step "A and B written at once, their blocks in the same stripes"
fio "${a[@]}" --iodepth=1 --do_verify=0 --output=/tmp/a.out &
fio "${b[@]}" --name=b0 --output=/tmp/b0.out ||
	{ cat /tmp/b0.out; die "writing B failed"; }
wait $! || { cat /tmp/a.out; die "writing A failed"; }

step "B written again: the stripes shared with A hold only A's blocks"
fio "${b[@]}" --name=b1 --output=/tmp/b1.out ||
	{ cat /tmp/b1.out; die "writing B again failed"; }

step "A verified, member 0 reads slowed to 2 s, while B is overwritten and collected"
# With reads that slow a collection run lasts minutes, and the background
# collection worker waits for it all that time: no hung task, by design.
echo 0 >/proc/sys/kernel/hung_task_timeout_secs
# One slow member: collection reads the rest of a stripe at once, so a
# block it moves off member 0 has its chunk freed and written over well
# within the time a host read of it, looked up just before, waits there.
# B flushes often: a flush makes what collection moved durable, so what it
# emptied is freed at once, not after a batch of stripes, and its chunks
# are the first the next stripe takes.
set_delay 2000 0
fio "${b[@]}" --name=b2 --time_based --runtime=300 --fsync=32 \
	--output=/tmp/b2.out &
bpid=$!
# Collection a stripe at a time: a run frees what it emptied as it ends,
# so the space a read started on comes free again while the read waits.
(
	while [[ ! -e /tmp/a-done ]]; do
		flat=$(stria status --json "$vol" | json_flat)
		free=$(sed -n 's/^0\.space\.free_bytes	//p' <<<"$flat")
		pool=$(sed -n 's/^0\.space\.pool_bytes	//p' <<<"$flat")
		stria gc --json --until-free $((free * 100 / pool + 1)) "$vol" \
			>>/tmp/gc.json || exit 1
	done
) &
gcpid=$!
ok=1
pass=0
end=$((SECONDS + 90))
while ((SECONDS < end)); do
	fio "${a[@]}" --iodepth=128 --verify_only=1 --verify_fatal=1 \
		--output=/tmp/verify.out || { ok=0; break; }
	((++pass % 5)) ||
		echo "pass $pass: A verified, $(status_field "$vol" gc_stripes) stripes collected"
done
touch /tmp/a-done
# B runs far longer than the passes of A: if it is gone, it failed.
kill "$bpid" 2>/dev/null || { cat /tmp/b2.out; die "overwriting B failed"; }
wait "$bpid" || true # the status of a job just killed
grep -q "err= *[1-9]" /tmp/b2.out && { cat /tmp/b2.out; die "overwriting B saw errors"; }
# Fast reads again: the collection run under way ends soon.
set_delay 0
wait "$gcpid" || die "stria gc failed"
stria status "$vol"
collected=$(status_field "$vol" gc_stripes)
echo "collection: $collected stripes"
((ok)) || { grep -E "verify|bad|err" /tmp/verify.out | head -20; \
	die "A read back wrong while its space was reused"; }
((collected > 0)) || die "collection never ran: the race was not run"

step "A verifies with the reads fast again"
fio "${a[@]}" --iodepth=32 --verify_only=1 --verify_fatal=1 \
	--output=/tmp/verify.out || { cat /tmp/verify.out; die "A does not verify"; }
stria stop "$vol"
for i in "${!devs[@]}"; do
	dmsetup remove "stria-slow$i"
done
remove_slices
echo ok

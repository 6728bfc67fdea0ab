#!/bin/bash
# Reads racing the reuse of the space they read from. The members are
# dm-delay devices whose reads take 500 ms (writes none), as a slow or
# retrying disk would: a read looks a block up, and its member bio then
# waits. Meanwhile free-space collection moves the block elsewhere, frees
# its chunk, and new writes fill that chunk. The read must still return the
# block's own data, not what was written over its old place: freed space
# waits for the reads that started before it was freed.
#
# Region A (16 MiB) and region B (32 MiB) are written at once, so that
# their blocks share stripes; then B is overwritten at random and the pool
# collected a little at a time while fio verifies A at a queue depth of 128.
source "$STRIA_LIB/common.sh"

slice_mib=32
slices 4 "$slice_mib"
modprobe dm-delay
sectors=$((slice_mib * 2048))
devs=()
# READ_MS: delay of every read of every member.
set_delay() { # READ_MS
	local i
	for i in "${!SLICES[@]}"; do
		local table="0 $sectors delay ${SLICES[i]} 0 $1 ${SLICES[i]} 0 0"
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
stria volume resize "$vol" --size $((48 << 20))
a=(--filename="$vol" --direct=1 --ioengine=io_uring --bs=4k --name=a
	--offset=0 --size=16M --rw=randwrite --randseed=7 --verify=crc32c --eta=never)
b=(--filename="$vol" --direct=1 --ioengine=io_uring --bs=4k --iodepth=8
	--offset=16M --size=32M --rw=randwrite --verify=crc32c --do_verify=0 --eta=never)

step "A and B written at once, their blocks in the same stripes"
fio "${a[@]}" --iodepth=8 --do_verify=0 --output=/tmp/a.out &
fio "${b[@]}" --name=b0 --randseed=1 --output=/tmp/b0.out ||
	{ cat /tmp/b0.out; die "writing B failed"; }
wait $! || { cat /tmp/a.out; die "writing A failed"; }

step "A verified, reads slowed to 500 ms, while B is overwritten and collected"
# With reads that slow a collection run lasts minutes, and the background
# collection worker waits for it all that time: no hung task, by design.
echo 0 >/proc/sys/kernel/hung_task_timeout_secs
set_delay 500
fio "${b[@]}" --name=b1 --randseed=2 --time_based --runtime=300 \
	--output=/tmp/b1.out &
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
for pass in 1 2 3; do
	fio "${a[@]}" --iodepth=128 --verify_only=1 --verify_fatal=1 \
		--output=/tmp/verify.out || { ok=0; break; }
	echo "pass $pass: A verified"
done
touch /tmp/a-done
# B runs far longer than the passes of A: if it is gone, it failed.
kill "$bpid" 2>/dev/null || { cat /tmp/b1.out; die "overwriting B failed"; }
wait "$bpid" || true # the status of a job just killed
grep -q "err= *[1-9]" /tmp/b1.out && { cat /tmp/b1.out; die "overwriting B saw errors"; }
wait "$gcpid" || die "stria gc failed"
set_delay 0
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

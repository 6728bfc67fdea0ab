#!/bin/bash
# Requests waiting for a worker come from every volume's queue at once:
# three volumes, each driven by fio at queue depth 128 with four jobs (more
# requests in flight than one volume's 128 tags), random 4k writes then
# their reads, crc32c verified; then a mixed random read/write run with
# the reads checked against what was written.  Each job has 16 MiB of its
# own, so that every block has one writer.  Every request must succeed
# and every block read back; the array's error counter stays at zero.
source "$STRIA_LIB/common.sh"

vol=$(fresh_array --raid 5)
v2=$(stria volume create "$vol" deep2 --size 256M)
v3=$(stria volume create "$vol" deep3 --size 256M)
common=(--direct=1 --ioengine=io_uring --iodepth=128 --iodepth_batch_submit=32
	--numjobs=4 --offset_increment=16M --bs=4k --size=16M --verify=crc32c --verify_fatal=1
	--group_reporting)

# Runs fio on every volume at once with ARGS; fails if any run fails.
on_all() { # NAME ARGS...
	local name=$1 v pids=() i=0 bad=0
	shift
	for v in "$vol" "$v2" "$v3"; do
		fio --name="$name" --filename="$v" "${common[@]}" "$@" \
			--output="/tmp/$name.$i.out" &
		pids+=($!)
		i=$((i + 1))
	done
	for i in "${!pids[@]}"; do
		if ! wait "${pids[i]}"; then
			cat "/tmp/$name.$i.out"
			bad=1
		fi
		grep -E 'WRITE:|READ:' "/tmp/$name.$i.out" || true
	done
	((bad == 0)) || die "fio $name failed"
}

step "random 4k writes on three volumes at depth 128 x 4 jobs, then verified"
on_all deepw --rw=randwrite --do_verify=1 --randseed=11

step "mixed random reads and writes, verified"
on_all deeprw --rw=randrw --rwmixread=70 --do_verify=1 --randseed=12

errors=$(status_field "$vol" errors)
[ "$errors" = 0 ] || die "the array counted $errors failed requests"
echo "ok: no request failed"
log=$(dmesg)
[[ $log != *"too many deferred requests"* ]] || die "requests were refused for want of room"

stria stop "$vol"
vol=$(assemble)
step "verified again after re-assembly"
v2=${vol}v2 v3=${vol}v3
on_all deepw --rw=randwrite --verify_only=1 --randseed=11
stria stop "$vol"
echo ok

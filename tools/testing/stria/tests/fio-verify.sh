#!/bin/bash
# fio with crc32c verification: random 4k and sequential 1M writes, checked
# once written, and again after the array is stopped and re-assembled.
source "$STRIA_LIB/common.sh"

vol=$(fresh_array)
common=(--direct=1 --ioengine=io_uring --verify=crc32c
	--verify_fatal=1 --size=96M --do_verify=1)

step "random 4k writes, verified"
fio --name=rand4k --rw=randwrite --bs=4k --iodepth=16 --randseed=7 "${common[@]}" --filename="$vol" \
	--output=/tmp/rand.out || { cat /tmp/rand.out; die "fio rand4k"; }
grep -E 'WRITE:|READ:' /tmp/rand.out

stria stop "$vol"
vol=$(assemble)
step "random 4k data verified after re-assembly"
fio --name=rand4k --rw=randwrite --bs=4k --iodepth=16 --randseed=7 "${common[@]}" --filename="$vol" \
	--verify_only=1 --output=/tmp/rand2.out ||
	{ cat /tmp/rand2.out; die "fio rand4k verify after re-assembly"; }

step "sequential 1M writes, verified"
fio --name=seq1m --rw=write --bs=1M --iodepth=4 "${common[@]}" --filename="$vol" \
	--offset=128M --output=/tmp/seq.out || { cat /tmp/seq.out; die "fio seq1m"; }
grep -E 'WRITE:|READ:' /tmp/seq.out

stria stop "$vol"
vol=$(assemble)
step "sequential 1M data verified after re-assembly"
fio --name=seq1m --rw=write --bs=1M --iodepth=4 "${common[@]}" --filename="$vol" \
	--offset=128M --verify_only=1 --output=/tmp/seq2.out ||
	{ cat /tmp/seq2.out; die "fio seq1m verify after re-assembly"; }
stria stop "$vol"

step "the check itself catches damage"
# Member 0's data area starts 1 MiB in; the stripes written first (the
# random 4k data) lie at its start. Overwrite 4 MiB of it, 8 MiB in.
dd if=/dev/urandom of="${MEMBERS[0]}" bs=1M count=4 seek=9 oflag=direct status=none
vol=$(assemble)
if fio --name=rand4k --rw=randwrite --bs=4k --iodepth=16 --randseed=7 "${common[@]}" --filename="$vol" \
	--verify_only=1 >/tmp/seq3.out 2>&1; then
	die "verification missed a damaged block"
fi
grep -m1 'verify:' /tmp/seq3.out || die "fio failed without a verify error"
stria stop "$vol"
echo ok

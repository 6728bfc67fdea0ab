#!/bin/bash
# A member that starts failing I/O (dm-flakey switched to error) makes
# host I/O fail with EIO, promptly, without a hang; the array can still be
# stopped afterwards. (Running degraded on the other members is not done
# yet: after a failed stripe write the array refuses writes.)
source "$STRIA_LIB/common.sh"

modprobe dm-flakey
flakey=()
for i in 0 1 2 3; do
	m=${MEMBERS[$i]}
	sz=$(blockdev --getsz "$m")
	dmsetup create "fl$i" --table "0 $sz flakey $m 0 3600 0"
	flakey+=("/dev/mapper/fl$i")
done
vol=$(fresh_array "${flakey[@]}")

step "healthy I/O through dm-flakey"
dd if=/dev/urandom of=/tmp/chunk bs=1M count=4 status=none
dd if=/tmp/chunk of="$vol" bs=1M oflag=direct status=none
dd if="$vol" of=/tmp/back bs=1M count=4 iflag=direct status=none
cmp /tmp/chunk /tmp/back || die "read back differs"

step "member 2 fails every I/O"
sz=$(blockdev --getsz "${MEMBERS[2]}")
dmsetup suspend fl2
dmsetup load fl2 --table "0 $sz error"
dmsetup resume fl2
errors_before=$(status_field "$vol" errors)
# Writes are buffered (the volume has a write-back cache): the failure
# shows when the stripes holding them are written, at the latest on the
# flush that fsync sends.
if dd if=/tmp/chunk of="$vol" bs=1M count=4 oflag=direct conv=fsync status=none 2>/tmp/err; then
	die "writes over a failing member were flushed"
fi
cat /tmp/err
grep -q 'Input/output error' /tmp/err || die "write failed without EIO"
# The 4 MiB written while healthy lie on every member, member 2 included.
if dd if="$vol" of=/dev/null bs=1M count=4 iflag=direct status=none 2>/tmp/err; then
	die "reads from a failing member succeeded"
fi
grep -q 'Input/output error' /tmp/err || die "read failed without EIO"
errors_after=$(status_field "$vol" errors)
[ "$errors_after" -gt "$errors_before" ] || die "error counter did not move"
echo "ok: errors $errors_before -> $errors_after"

step "later writes fail at once, and the array still stops"
if dd if=/tmp/chunk of="$vol" bs=64k count=1 oflag=direct status=none 2>/tmp/err; then
	die "a write after the failure succeeded"
fi
grep -q 'Input/output error' /tmp/err || die "write failed without EIO"

stria stop "$vol"
for i in 0 1 2 3; do dmsetup remove "fl$i"; done
echo ok

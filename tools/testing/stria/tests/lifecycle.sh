#!/bin/bash
# Open, mounted and busy volumes: STOP and rmmod are refused while the
# volume is in use and work once it is not; flushes reach the driver.
source "$STRIA_LIB/common.sh"

vol=$(fresh_array)
mkfs.ext4 -q -F "$vol"
mkdir -p /mnt/fs
mount "$vol" /mnt/fs

step "flushes reach the driver"
name=$(basename "$vol")
[ "$(cat /sys/block/$name/queue/write_cache)" = "write back" ] || die "no write-back cache advertised"
[ "$(cat /sys/block/$name/queue/fua)" = 1 ] || die "no FUA advertised"
echo "ok: write back cache with FUA"
before=$(status_field "$vol" flushes)
echo data >/mnt/fs/f
sync /mnt/fs/f
after=$(status_field "$vol" flushes)
[ "$after" -gt "$before" ] || die "fsync sent no flush ($before -> $after)"
echo "ok: flushes $before -> $after"

step "stop and unload refused while mounted"
expect_errno EBUSY stria stop "$vol"
rmmod stria 2>/dev/null && die "rmmod succeeded with a mounted volume"
echo "ok: rmmod refused"
[ -f /mnt/fs/f ] || die "mounted filesystem lost"
umount /mnt/fs

step "stop refused while the device is held open"
exec 3<"$vol"
expect_errno EBUSY stria stop "$vol"
exec 3<&-

step "control device held open pins the module"
exec 4</dev/stria-control
rmmod stria 2>/dev/null && die "rmmod succeeded with the control device open"
exec 4<&-
echo "ok: rmmod refused"

step "status and stop"
stria status
json=$(stria status --json "$vol")
case "$json" in *'"layout": "log"'*) ;; *) die "status --json: $json" ;; esac
stria stop "$vol"
[ -b "$vol" ] && die "$vol still exists after stop"
expect_errno ENOENT stria stop "$vol"

step "unload with an idle array, then reload"
vol=$(assemble)
rmmod stria || die "rmmod with an unopened array failed"
[ -e /dev/stria-control ] && die "control device still there"
insmod /stria/stria.ko
vol=$(assemble)
stria stop "$vol"
rmmod stria
echo ok

#!/bin/bash
# ext4 and xfs on a stria volume: mkfs, mount, write, read back after a
# remount, unmount, and a clean fsck.
source "$STRIA_LIB/common.sh"

vol=$(fresh_array)
mkdir -p /mnt/fs

for fs in ext4 xfs; do
	step "$fs on $vol"
	case $fs in
	ext4) mkfs.ext4 -q -F "$vol" ;;
	xfs) mkfs.xfs -q -f "$vol" ;;
	esac
	mount -t $fs "$vol" /mnt/fs
	dd if=/dev/urandom of=/tmp/pattern bs=1M count=24 status=none
	cp /tmp/pattern /mnt/fs/big
	for i in $(seq 1 50); do echo "file $i" >"/mnt/fs/small.$i"; done
	sync
	umount /mnt/fs
	mount -t $fs "$vol" /mnt/fs
	cmp /tmp/pattern /mnt/fs/big || die "$fs: big file differs after remount"
	for i in $(seq 1 50); do
		[ "$(cat "/mnt/fs/small.$i")" = "file $i" ] || die "$fs: small.$i differs"
	done
	umount /mnt/fs
	case $fs in
	ext4) e2fsck -f -n "$vol" || die "ext4: fsck found problems" ;;
	xfs) xfs_repair -n "$vol" || die "xfs: repair found problems" ;;
	esac
	echo "ok: $fs"
done

step "data survives stop and re-assembly, members in any order"
mkfs.ext4 -q -F "$vol"
mount "$vol" /mnt/fs
cp /tmp/pattern /mnt/fs/big
umount /mnt/fs
stria stop "$vol"
vol=$(assemble "${MEMBERS[3]}" "${MEMBERS[1]}" "${MEMBERS[0]}" "${MEMBERS[2]}")
mount "$vol" /mnt/fs
cmp /tmp/pattern /mnt/fs/big || die "file differs after re-assembly"
umount /mnt/fs
e2fsck -f -n "$vol" >/dev/null || die "fsck after re-assembly"
stria stop "$vol"
echo ok

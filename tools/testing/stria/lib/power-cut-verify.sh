#!/bin/bash
# Guest half of the power-cut test: after the cut, the array assembles, the
# filesystem mounts (replaying its journal) and checks clean, and every file
# in the fsynced manifest has the content it was written with.
source "$STRIA_LIB/common.sh"

vol=$(assemble)
mkdir -p /mnt/pc
mount "$vol" /mnt/pc
n=0
while read -r f sum; do
	[ -n "$sum" ] || continue     # a torn last line was never fsynced
	[ -e "/mnt/pc/$f" ] || continue # removed by a later round
	got=$(sha256sum <"/mnt/pc/$f" | cut -c1-64)
	[ "$got" = "$sum" ] || die "$f: content differs after the power cut"
	n=$((n + 1))
done </mnt/pc/manifest
umount /mnt/pc
e2fsck -f -n "$vol" >/tmp/fsck.out 2>&1 || { cat /tmp/fsck.out; die "fsck after the power cut"; }
stria stop "$vol"
echo "ok: $n fsynced files intact"

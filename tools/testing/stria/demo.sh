#!/bin/bash
# The main job on defaults: four members, ext4, files written and read back.
source "$STRIA_LIB/common.sh"

step "stria create ${MEMBERS[*]}"
stria create "${MEMBERS[@]}"
step "stria assemble ${MEMBERS[*]}"
vol=$(assemble)
echo "$vol"
step "mkfs.ext4 $vol"
mkfs.ext4 -q -F "$vol"
mkdir -p /mnt/demo
mount "$vol" /mnt/demo
step "write and read back files"
dd if=/dev/urandom of=/tmp/payload bs=1M count=32 status=none
cp /tmp/payload /mnt/demo/payload
cp -r /stria/lib /mnt/demo/lib
sync
sha256sum /tmp/payload /mnt/demo/payload
cmp /tmp/payload /mnt/demo/payload
df -h /mnt/demo
ls -l /mnt/demo
step "stria status"
stria status
umount /mnt/demo
step "stria stop $vol"
stria stop "$vol"
stria status

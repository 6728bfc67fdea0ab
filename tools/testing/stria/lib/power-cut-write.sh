#!/bin/bash
# Guest half of the power-cut test: writes files, fsyncs each, and appends
# "name checksum" to a manifest that is itself fsynced, until the plug is
# pulled.  Everything in the manifest must survive.
source "$STRIA_LIB/common.sh"

if [ "${1:-}" = first ]; then
	vol=$(fresh_array)
	mkfs.ext4 -q -F "$vol"
else
	vol=$(assemble)
fi
mkdir -p /mnt/pc
mount "$vol" /mnt/pc
mkdir -p /mnt/pc/data
round=$2
echo "=== power cut armed ==="
i=0
while :; do
	i=$((i + 1))
	f=data/r$round-$i
	head -c $(( (RANDOM % 64 + 1) * 4096 )) /dev/urandom >/tmp/chunk
	cp /tmp/chunk "/mnt/pc/$f"
	sync "/mnt/pc/$f"
	echo "$f $(sha256sum </tmp/chunk | cut -c1-64)" >>/mnt/pc/manifest
	sync /mnt/pc/manifest
done

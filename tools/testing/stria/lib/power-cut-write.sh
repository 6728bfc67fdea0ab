#!/bin/bash
# Guest half of the power-cut test, one boot per cut.  "first" makes a
# fresh array with ext4, an empty manifest and a data directory, synced;
# "again" re-assembles the array as the last cut left it and checks it
# (power-cut-check.sh).  Then writes files, fsyncs each, and appends
# "name checksum" to a manifest that is itself fsynced, until the plug is
# pulled.  Everything in the manifest must survive.
source "$STRIA_LIB/common.sh"
source "$STRIA_LIB/power-cut-check.sh"

round=$2
mkdir -p /mnt/pc
if [ "$1" = first ]; then
	vol=$(fresh_array)
	mkfs.ext4 -q -F "$vol"
	mount "$vol" /mnt/pc
	mkdir /mnt/pc/data
	: >/mnt/pc/manifest
	sync
else
	vol=$(assemble_shuffled)
	pc_check "$vol"
	mount "$vol" /mnt/pc
fi
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

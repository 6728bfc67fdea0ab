#!/bin/bash
# Guest half of the power-cut test, one boot per cut.  "first" makes a
# fresh array with ext4, an empty manifest and a data directory, synced;
# "again" re-assembles the array as the last cut left it and checks it
# (power-cut-check.sh).  Then writes files, fsyncs each, and appends
# "name checksum" to a manifest that is itself fsynced, until the plug is
# pulled.  Everything in the manifest must survive.  With KEEP above 0,
# each file is removed KEEP files after it was written, its name first
# appended to an fsynced list of removed files; and every five files the
# stripes collection has emptied so far are printed.  STRIP, if given, is
# the strip size in KiB of the fresh array.
source "$STRIA_LIB/common.sh"
source "$STRIA_LIB/power-cut-check.sh"

round=$2
keep=${3:-0}
strip=${4:-}
mkdir -p /mnt/pc
if [ "$1" = first ]; then
	vol=$(fresh_array ${strip:+--strip "$strip"})
	mkfs.ext4 -q -F "$vol"
	mount "$vol" /mnt/pc
	mkdir /mnt/pc/data
	: >/mnt/pc/manifest
	: >/mnt/pc/removed
	sync
else
	vol=$(assemble_shuffled)
	((keep == 0)) || stria status "$vol" | grep -E '^  (pool|stripes on)'
	((keep == 0)) || stria status --json "$vol" | grep '"free_bytes"' | tr -d ' \n'; echo
	pc_check "$vol"
	mount "$vol" /mnt/pc
	if ((keep > 0)); then
		# The files earlier rounds kept go too, so that the pool holds
		# about KEEP files whatever the number of rounds.
		(cd /mnt/pc && ls data) | sed 's|^|data/|' >>/mnt/pc/removed
		sync /mnt/pc/removed
		rm -f /mnt/pc/data/*
	fi
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
	if ((keep > 0 && i > keep)); then
		echo "data/r$round-$((i - keep))" >>/mnt/pc/removed
		sync /mnt/pc/removed
		rm "/mnt/pc/data/r$round-$((i - keep))"
	fi
	((keep > 0 && i % 5 == 0)) && echo "collection: $(status_field "$vol" gc_stripes) stripes"
done

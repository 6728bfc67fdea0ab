# SPDX-License-Identifier: GPL-2.0
# Shared by the guest halves of the power-cut test (sourced after
# common.sh): what must hold after a power cut.

# The ext4 on VOL mounts (replaying its journal), every file named by a
# whole line of the fsynced manifest and not in the list of removed files
# is there with the content it was written with, and once unmounted the
# filesystem checks clean.
pc_check() { # VOL
	local vol=$1 n
	mkdir -p /mnt/pc
	mount "$vol" /mnt/pc
	[ -f /mnt/pc/manifest ] || die "the manifest is gone after the power cut"
	# "name checksum" lines; a torn last line was never fsynced.  Each
	# line was appended after its file was fsynced: the file must exist.
	touch /mnt/pc/removed
	awk 'FILENAME == ARGV[1] { gone[$1] = 1; next }
	     length($2) == 64 && !($1 in gone) { print $2 "  " $1 }' \
		/mnt/pc/removed /mnt/pc/manifest >/tmp/manifest.sha256
	n=$(wc -l </tmp/manifest.sha256)
	if ! (cd /mnt/pc && sha256sum -c /tmp/manifest.sha256 >/tmp/check.out 2>&1); then
		grep -v ': OK$' /tmp/check.out | head -n 20
		die "fsynced files missing or changed after the power cut"
	fi
	umount /mnt/pc
	e2fsck -f -n "$vol" >/tmp/fsck.out 2>&1 || { cat /tmp/fsck.out; die "fsck after the power cut"; }
	# Live blocks are counted again at assembly: they must be exactly the
	# blocks the maps point at, once a flush has put every block still in
	# a stripe buffer on the members.  Collection may be moving blocks in
	# the background (into buffers again): read both only while it is idle.
	local live mapped gc0 gc1 try
	for try in 1 2 3 4 5 6 7 8 9 10; do
		gc0=$(status_field "$vol" gc_moved_bytes)
		sync "$vol"
		live=$(status_field "$vol" live_bytes)
		mapped=$(status_field "$vol" mapped_blocks)
		gc1=$(status_field "$vol" gc_moved_bytes)
		((gc0 == gc1)) && break
		sleep 1
	done
	((gc0 == gc1)) || die "collection never went idle"
	((live == mapped * 4096)) || die "live bytes $live, but $mapped blocks are mapped"
	echo "ok: $n fsynced files intact"
}

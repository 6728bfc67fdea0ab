#!/bin/bash
# Snapshots of mounted filesystems: ext4 and xfs on a volume, busy with
# writes; `fsfreeze`, an instant copy, thaw, and the origin goes on
# changing.  The copy mounts beside the origin (xfs with -o nouuid),
# holds every file exactly as it was at the freeze and checks clean; the
# origin keeps its own later changes; both survive stop and re-assembly.
source "$STRIA_LIB/common.sh"

mkdir -p /mnt/orig /mnt/snap

# sha256 of every file under DIR, by path relative to it.
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }

files() { # DIR N
	local i
	mkdir -p "$1"
	for i in $(seq 1 "$2"); do
		head -c $((RANDOM * 8 + RANDOM % 4096)) /dev/urandom >"$1/f$i"
	done
}

snapshot() { # FS
	local fs=$1 vol snap opts=()
	vol=$(fresh_array --force)
	step "$fs: files on the origin, a writer busy during the freeze"
	case $fs in
	ext4) mkfs.ext4 -q -F "$vol" ;;
	xfs) mkfs.xfs -q -f "$vol"; opts=(-o nouuid) ;;
	esac
	mount "$vol" /mnt/orig
	files /mnt/orig/a 200
	sync
	# A writer that keeps going through freeze and copy.
	(for i in $(seq 1 400); do
		head -c 65536 /dev/urandom >"/mnt/orig/busy$((i % 50))" || exit 1
	done) &
	local writer=$!
	sleep 1
	fsfreeze --freeze /mnt/orig
	sums /mnt/orig >/tmp/at-copy
	# One filesystem's copy keeps changed blocks only, the other's a
	# full pointer table.
	form=full
	[ "$fs" = ext4 ] && form=changed
	snap=$(stria copy create --form $form "$vol" "snap-$fs")
	fsfreeze --unfreeze /mnt/orig
	echo "copy $snap made of a frozen $fs"
	wait "$writer" || die "$fs: the writer failed"
	step "$fs: the origin changes on"
	rm -r /mnt/orig/a/f1*
	files /mnt/orig/b 50
	sync
	sums /mnt/orig >/tmp/orig-after
	cmp -s /tmp/at-copy /tmp/orig-after && die "$fs: the origin did not change"

	step "$fs: the copy mounts, holds the files of the freeze, checks clean"
	# A frozen xfs keeps its log dirty: mounting replays it, as for any
	# snapshot taken under a mounted filesystem.
	mount "${opts[@]}" "$snap" /mnt/snap
	sums /mnt/snap >/tmp/snap-now
	cmp /tmp/at-copy /tmp/snap-now || die "$fs: the copy's files differ from the freeze"
	echo "$fs: $(wc -l </tmp/snap-now) files as at the freeze"
	umount /mnt/snap
	case $fs in
	ext4) e2fsck -fn "$snap" || die "ext4: the copy does not check clean" ;;
	xfs) xfs_repair -n "$snap" || die "xfs: the copy does not check clean" ;;
	esac
	umount /mnt/orig

	step "$fs: both as they were after stop and re-assembly"
	stria stop "$vol"
	vol=$(assemble_shuffled)
	mount "$vol" /mnt/orig
	mount "${opts[@]}" "$snap" /mnt/snap
	sums /mnt/orig | cmp - /tmp/orig-after || die "$fs: the origin changed at re-assembly"
	sums /mnt/snap | cmp - /tmp/at-copy || die "$fs: the copy changed at re-assembly"
	umount /mnt/snap
	umount /mnt/orig
	case $fs in
	ext4) e2fsck -fn "$snap" && e2fsck -fn "$vol" ;;
	xfs) xfs_repair -n "$snap" && xfs_repair -n "$vol" ;;
	esac || die "$fs: a filesystem does not check clean after re-assembly"
	stria stop "$vol"
}

snapshot ext4
snapshot xfs
echo "copy-fs: OK"

#!/bin/bash
# ext4 and xfs on a log-structured array (RAID-5, the default for four
# members): a few hundred files of random sizes, then appends, overwrites
# in place, rewrites, renames and removals, with fsyncs along the way and a
# sync at the end.  The sha256 of every file is recorded; the filesystem
# unmounts and checks clean; the array is stopped and re-assembled with its
# members in a random order; the filesystem mounts with every file
# identical (no file missing, none extra) and checks clean again.
source "$STRIA_LIB/common.sh"

mnt=/mnt/fs
mkdir -p "$mnt"

rand() { head -c "$1" /dev/urandom; }

# The files, written and then changed, under DIR.
workload() { # DIR
	local dir=$1 i f size
	for i in $(seq 0 9); do mkdir -p "$dir/d$i"; done
	for i in $(seq 1 300); do
		f=$dir/d$((i % 10))/f$i
		case $((RANDOM % 20)) in
		0) size=0 ;;
		[1-7]) size=$((RANDOM % 4096 + 1)) ;;
		8|9|1[0-3]) size=$((RANDOM % 61440 + 4096)) ;;
		1[4-8]) size=$(((RANDOM % 256 + 1) * 1024 + RANDOM % 1024)) ;;
		19) size=$((1048576 + RANDOM * 32)) ;;
		esac
		rand "$size" >"$f"
		((i % 4)) || sync "$f"
	done
	for i in $(seq 1 300); do
		f=$dir/d$((i % 10))/f$i
		size=$(stat -c %s "$f")
		case $((i % 20)) in
		1|6|11) # appended to
			rand $((RANDOM % 10000 + 1)) >>"$f" ;;
		3|13) # one block overwritten in place
			if ((size >= 8192)); then
				dd if=/dev/urandom of="$f" bs=4096 count=1 conv=notrunc status=none \
					seek=$((RANDOM % (size / 4096)))
			fi ;;
		5) # a few bytes overwritten, not block aligned
			if ((size > 100)); then
				dd if=/dev/urandom of="$f" bs=1 count=100 conv=notrunc status=none \
					seek=$((RANDOM % (size - 100)))
			fi ;;
		7) # rewritten, mostly shorter
			rand $((RANDOM % 20000)) >"$f" ;;
		9) mv "$f" "$f.renamed"; f=$f.renamed ;;
		17) rm "$f" ;;
		esac
		if ((i % 5 == 0)) && [ -e "$f" ]; then sync "$f"; fi
	done
	sync
}

# "sha256  ./path" of every file under DIR, sorted by path.
checksums() { # DIR
	(cd "$1" && find . -type f | sort | xargs sha256sum)
}

fsck_clean() { # FS VOL WHEN
	case $1 in
	ext4) e2fsck -f -n "$2" >/tmp/fsck.out 2>&1 ;;
	xfs) xfs_repair -n "$2" >/tmp/fsck.out 2>&1 ;;
	esac || { cat /tmp/fsck.out; die "$1: fsck $3 found problems"; }
	echo "ok: $1 checks clean $3"
}

vol=$(fresh_array)
for fs in ext4 xfs; do
	step "$fs: mkfs, files written, changed and synced"
	case $fs in
	ext4) mkfs.ext4 -q -F "$vol" ;;
	xfs) mkfs.xfs -q -f "$vol" ;;
	esac
	mount -t $fs "$vol" "$mnt"
	workload "$mnt"
	checksums "$mnt" >/tmp/sums.$fs
	echo "ok: $(wc -l </tmp/sums.$fs) files, $(du -sk "$mnt" | cut -f1) KiB"
	umount "$mnt"
	fsck_clean $fs "$vol" "after writing"

	step "$fs: every file identical after stop and re-assembly"
	stria stop "$vol"
	vol=$(assemble_shuffled)
	mount -t $fs "$vol" "$mnt"
	checksums "$mnt" >/tmp/sums.$fs.after
	if ! cmp -s /tmp/sums.$fs /tmp/sums.$fs.after; then
		diff /tmp/sums.$fs /tmp/sums.$fs.after | head -n 20
		die "$fs: files differ after re-assembly"
	fi
	echo "ok: $(wc -l </tmp/sums.$fs.after) files identical"
	umount "$mnt"
	fsck_clean $fs "$vol" "after re-assembly"
done
stria stop "$vol"
echo ok

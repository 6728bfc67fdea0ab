#!/bin/bash
# Discard and write-zeroes: the volume advertises both, discarded and
# zeroed ranges read as zeros at once and after re-assembly, data around
# them is untouched, and fstrim on a mounted filesystem (ext4, xfs) unmaps
# what the filesystem freed.
source "$STRIA_LIB/common.sh"

vol=$(fresh_array --raid 5 --strip 64)
dev=$(basename "$vol")

step "queue limits advertise discard and write-zeroes"
max=$(cat "/sys/block/$dev/queue/discard_max_bytes")
gran=$(cat "/sys/block/$dev/queue/discard_granularity")
wz=$(cat "/sys/block/$dev/queue/write_zeroes_max_bytes")
echo "discard_max_bytes $max, granularity $gran, write_zeroes_max_bytes $wz"
((max >= 1048576)) || die "discard not advertised"
((gran == 4096)) || die "discard granularity $gran, expected 4096"
((wz >= 1048576)) || die "write-zeroes not advertised"

step "discard and zero ranges of written data"
head -c $((16 << 20)) /dev/urandom >/tmp/data
dd if=/tmp/data of="$vol" bs=1M oflag=direct conv=fsync status=none || die "write failed"
before=$(status_field "$vol" mapped_blocks)
blkdiscard -o $((1 << 20)) -l $((3 << 20)) "$vol" || die "blkdiscard failed"
blkdiscard -z -o $((8 << 20)) -l $((2 << 20)) "$vol" || die "blkdiscard -z failed"
# A single block in the middle of a written run, and one across the end of
# the written data.
blkdiscard -o $((12 << 20)) -l 4096 "$vol" || die "one-block discard failed"
blkdiscard -o $((15 << 20)) -l $((2 << 20)) "$vol" || die "discard past the data failed"
after=$(status_field "$vol" mapped_blocks)
echo "mapped blocks: $before -> $after"
# 3 MiB + 2 MiB + 4 KiB + 1 MiB of written blocks were dropped.
((before - after == 768 + 512 + 1 + 256)) ||
	die "mapped blocks fell by $((before - after)), expected $((768 + 512 + 1 + 256))"

# The expected contents: the data with those ranges zeroed.
cp /tmp/data /tmp/want
zero() { dd if=/dev/zero of=/tmp/want bs=4096 seek="$1" count="$2" conv=notrunc status=none; }
zero 256 768
zero 2048 512
zero 3072 1
zero 3840 256
check() {
	cmp -n $((16 << 20)) /tmp/want "$vol" || die "$1: contents differ"
	cmp -n $((1 << 20)) -i 0:$((16 << 20)) /dev/zero "$vol" ||
		die "$1: the discarded range past the data is not zeros"
	echo "ok: $1"
}
check "after discard"

step "stop and re-assemble"
stria stop "$vol"
vol=$(assemble_shuffled)
check "after re-assembly"
after2=$(status_field "$vol" mapped_blocks)
((after2 == after)) || die "mapped blocks after re-assembly: $after2, expected $after"

step "writes after a discard land again"
head -c $((1 << 20)) /dev/urandom >/tmp/new
dd if=/tmp/new of="$vol" bs=1M seek=1 oflag=direct conv=fsync status=none || die "rewrite failed"
dd if=/tmp/new of=/tmp/want bs=1M seek=1 conv=notrunc status=none
check "after rewriting a discarded range"

# On the filesystem mounted at /mnt/t, a 48 MiB file written and removed:
# fstrim must unmap most of its 12288 blocks.
fstrim_frees() { # FS
	local full trimmed
	head -c $((48 << 20)) /dev/urandom >/mnt/t/big
	sync
	full=$(status_field "$vol" mapped_blocks)
	rm /mnt/t/big
	sync
	fstrim -v /mnt/t || die "fstrim on $1 failed"
	trimmed=$(status_field "$vol" mapped_blocks)
	echo "mapped blocks: $full with the file, $trimmed after rm and fstrim"
	((full - trimmed >= 12000)) || die "fstrim on $1 freed only $((full - trimmed)) blocks"
}

step "fstrim on ext4 unmaps what the filesystem freed"
mkfs.ext4 -q -F -E nodiscard "$vol" || die "mkfs.ext4 failed"
mkdir -p /mnt/t
mount -o nodiscard "$vol" /mnt/t || die "mount failed"
sha256sum /tmp/data | cut -d' ' -f1 >/tmp/keep.sum
cp /tmp/data /mnt/t/keep
fstrim_frees ext4
umount /mnt/t
e2fsck -f -n "$vol" >/tmp/fsck 2>&1 || { cat /tmp/fsck; die "fsck after fstrim failed"; }
unmounted=$(status_field "$vol" mapped_blocks)
stria stop "$vol"
vol=$(assemble_shuffled)
again=$(status_field "$vol" mapped_blocks)
((again == unmounted)) || die "mapped blocks after re-assembly: $again, expected $unmounted"
echo "ok: fstrim'd space stays unmapped after re-assembly"
mount "$vol" /mnt/t || die "mount after re-assembly failed"
[ "$(sha256sum /mnt/t/keep | cut -d' ' -f1)" = "$(cat /tmp/keep.sum)" ] ||
	die "a kept file changed"
[ ! -e /mnt/t/big ] || die "the removed file is back"
umount /mnt/t
echo "ok: files intact"

step "fstrim on xfs unmaps what the filesystem freed"
mkfs.xfs -q -f -K "$vol" || die "mkfs.xfs failed"
mount "$vol" /mnt/t || die "xfs mount failed"
fstrim_frees xfs
umount /mnt/t
xfs_repair -n "$vol" >/tmp/repair 2>&1 || { cat /tmp/repair; die "xfs_repair -n after fstrim failed"; }
stria stop "$vol"

#!/bin/bash
# Metadata that passes its checksum but says what no stria ever wrote, made
# with stria-craft on 4-member RAID-5 arrays (dm-linear slices, so each
# starts on zeroes):
#   a. a volume whose size does not fit a u64 in bytes, on every member
#      (once of a layout the driver does not serve, which assembly skips but
#      lists, once of the served one): assembly refuses with EINVAL and one
#      line naming the superblock, the control device keeps answering, and
#      the array assembles again once the size is sane (2 GiB, thin);
#   b. the header copy in strip 0 of a stripe holding host data names, for
#      another strip, a member the array does not have, or a block near
#      2^60: assembly ignores that copy with a warning, reads the stripe
#      from its other copies, and every block reads back;
#   c. member 0's superblocks set back to what they were before a volume
#      was made (as a member that missed the last table change would hold):
#      assembly takes the newest table, the volume is there, and member 0
#      is brought up to date.
# The harness fails the test on any oops, BUG or WARNING in the kernel log.
source "$STRIA_LIB/common.sh"

mib=$(slice_size 12 64)
# Byte offsets of the fields changed (Documentation/stria-format.rst).
sb_volume0=2048 v_size=8 v_layout=16
hdr_strips=128 strip_size=24 s_lba=0 s_member=18

dd if=/dev/urandom of=/tmp/data bs=1M count=2 status=none

stria_log() { dmesg | grep -i stria || true; }

# Check that VOL holds /tmp/data at MiB 8.
expect_data() { # VOL WHAT
	dd if="$1" of=/tmp/back bs=1M skip=8 count=2 iflag=direct status=none ||
		die "$2: read error"
	cmp -s /tmp/data /tmp/back || die "$2: wrong data"
	echo "ok: $2"
}

# A fresh array on new slices holding /tmp/data at MiB 8, stopped; its
# members, in index order, in ARRAY.  Slices removed before start on the
# same sectors again: --force overwrites the array left there.
make_array() { # NAME
	local vol
	slices 4 "$mib"
	ARRAY=("${SLICES[@]}")
	vol=$(fresh_array --force --raid 5 --name "$1" "${ARRAY[@]}")
	dd if=/tmp/data of="$vol" bs=1M seek=8 oflag=direct conv=notrunc,fsync status=none
	stria stop "$vol"
}

step "a: a volume size past what a u64 holds in bytes"
make_array crafted-a
for layout in 2 1; do
	for dev in "${ARRAY[@]}"; do
		stria-craft sb "$dev" $((sb_volume0 + v_layout)) 1 $layout >/dev/null
		stria-craft sb "$dev" $((sb_volume0 + v_size)) 8 $((1 << 62)) >/dev/null
	done
	dmesg -c >/dev/null
	expect_errno EINVAL stria assemble "${ARRAY[@]}"
	stria_log
	stria_log | grep -qi "superblock" || die "the kernel log does not name the bad superblock"
	# The control device still answers: no ioctl is stuck behind a panic.
	stria status >/dev/null || die "stria status fails after the refused assembly"
	echo "ok: layout $layout, size 2^62 refused"
done
for dev in "${ARRAY[@]}"; do
	stria-craft sb "$dev" $((sb_volume0 + v_size)) 8 $((2 * 1024 * 1024 * 1024 / 4096)) >/dev/null
done
stria examine "${ARRAY[0]}" >/dev/null || die "stria examine refuses the repaired superblock"
vol=$(assemble "${ARRAY[@]}")
expect_data "$vol" "with a sane size, the data reads back"
stria volume list >/dev/null
stria stop "$vol"
remove_slices

step "b: a header copy naming places the array does not have"
# (strip 1's member, value) and (strip 1's block, value).
for spec in "$s_member:1:31" "$s_lba:8:$((1 << 60))"; do
	IFS=: read -r field width value <<<"$spec"
	make_array crafted-b
	stripe_map /tmp/map "${ARRAY[@]}"
	seq=$(stripes_holding /tmp/map 2048 512 | head -n1)
	[ -n "$seq" ] || die "no stripe holds the data"
	read -r m0 l0 <<<"$(awk -v s="$seq" '$1 == s && $2 == 0 { print $3, $4; exit }' /tmp/map/strips)"
	[ -n "$l0" ] || die "stripe $seq has no strip 0"
	stria-craft header "${ARRAY[m0]}" "$l0" $((hdr_strips + strip_size + field)) "$width" "$value"
	dmesg -c >/dev/null
	vol=$(assemble_shuffled "${ARRAY[@]}")
	stria_log
	expect_data "$vol" "stripe $seq read from its other header copies (field $field = $value)"
	stria_log | grep -q "stripe header ignored" ||
		die "the kernel log does not report the crafted header copy"
	stria stop "$vol"
	remove_slices
done

step "c: member 0 holds the volume table from before the last change"
make_array crafted-c
last=$(($(blockdev --getsize64 "${ARRAY[0]}") / 1048576 - 1))
# The superblocks lie in the first and last MiB; data lies between.
dd if="${ARRAY[0]}" of=/tmp/sb-head bs=1M count=1 iflag=direct status=none
dd if="${ARRAY[0]}" of=/tmp/sb-tail bs=1M skip=$last count=1 iflag=direct status=none
vol=$(assemble "${ARRAY[@]}")
extra=$(stria volume create "$vol" extra --size 64M)
[ -b "$extra" ] || die "volume create printed '$extra'"
stria stop "$vol"
dd if=/tmp/sb-head of="${ARRAY[0]}" bs=1M oflag=direct conv=notrunc status=none
dd if=/tmp/sb-tail of="${ARRAY[0]}" bs=1M seek=$last oflag=direct conv=notrunc status=none
stria examine "${ARRAY[0]}" | grep -q extra && die "member 0 still records the new volume"
dmesg -c >/dev/null
vol=$(assemble_shuffled "${ARRAY[@]}")
stria_log
[ -b "$extra" ] || die "the volume made last is missing after assembly"
stria volume list | grep -q extra || die "stria volume list does not show the volume made last"
expect_data "$vol" "the data reads back"
stria stop "$vol"
stria examine "${ARRAY[0]}" | grep -q extra || die "member 0 was not brought up to date"
echo "ok: member 0 brought up to date"
vol=$(assemble "${ARRAY[@]}")
[ -b "$extra" ] || die "the volume is missing at the next assembly"
stria stop "$vol"
remove_slices
echo ok

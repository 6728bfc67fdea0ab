#!/bin/bash
# Damaged and foreign stripe headers at assembly, each case on a 4-member
# RAID-5 array of its own holding two regions of known data, written with
# an fsync each (so in stripes of their own) and then stopped:
#   a. one header copy of a flushed stripe has a flipped byte (the newest
#      stripe; then one more, of an older stripe): the array assembles, all
#      data reads back, the kernel log reports the damaged copy;
#   b. every header copy of the stripes of one region is zeroed: the array
#      assembles and reports the gap in the chain of stripes, that region
#      reads as never written, the other reads back;
#   c. a whole stripe of another array (valid headers with a higher
#      sequence number, data checksums and locations, data for the same
#      host blocks) is copied into free space on the members: the array
#      assembles and ignores it, all data reads back.
# The members are small dm-linear slices (see `slices` in common.sh) so that
# every array starts on zeroes and `stria dump` has little to scan.  The
# harness fails the test on any oops, BUG or WARNING in the kernel log.
source "$STRIA_LIB/common.sh"

mib=$(slice_size 16 64)

# The regions, in MiB of the volume: B is written first, then A, each with
# an fsync.  A's stripes come after B's and record them as flushed.
a_off=8 a_mib=2
b_off=32 b_mib=1
# The foreign array writes this much at filler_off first, so that its
# stripes reach higher sequence numbers and member blocks.
filler_off=64 filler_mib=8
a_lba=$((a_off * 256)) a_len=$((a_mib * 256))
b_lba=$((b_off * 256)) b_len=$((b_mib * 256))

# A stria kernel message about a damaged header copy contains "header" and
# one of these (case-insensitive).
bad_words='bad|corrupt|invalid|damage|checksum|crc|mismatch|ignor|unusable'

dd if=/dev/urandom of=/tmp/a bs=1M count=$a_mib status=none
dd if=/dev/urandom of=/tmp/b bs=1M count=$b_mib status=none
dd if=/dev/urandom of=/tmp/a.foreign bs=1M count=$a_mib status=none
dd if=/dev/urandom of=/tmp/filler bs=1M count=$filler_mib status=none
dd if=/dev/zero of=/tmp/zero bs=1M count=$b_mib status=none

# Write FILE at MiB OFFSET of VOL, then fsync.
put() { # VOL FILE OFFSET
	dd if="$2" of="$1" bs=1M seek="$3" oflag=direct conv=notrunc,fsync status=none ||
		die "writing $2 to $1"
}

# Check that VOL holds FILE at MiB OFFSET.
expect() { # VOL FILE OFFSET WHAT
	local n=$(($(stat -c %s "$2") / 1048576))
	dd if="$1" of=/tmp/back bs=1M skip="$3" count="$n" iflag=direct status=none ||
		die "$4: read error"
	cmp -s "$2" /tmp/back || die "$4: wrong data"
	echo "ok: $4"
}

# Make a fresh array on new slices, list its members (in index order) in
# ARRAY, write (FILLER,) B and A (from A_FILE), check that the fsyncs
# reached the driver as flushes, and stop it.
make_array() { # NAME A_FILE [filler]
	local vol before after
	slices 4 "$mib"
	ARRAY=("${SLICES[@]}")
	vol=$(fresh_array --raid 5 --name "$1" "${ARRAY[@]}")
	before=$(status_field "$vol" flushes)
	[ "${3:-}" != filler ] || put "$vol" /tmp/filler $filler_off
	put "$vol" /tmp/b $b_off
	put "$vol" "$2" $a_off
	after=$(status_field "$vol" flushes)
	((after >= before + 2)) || die "two fsyncs sent $((after - before)) flushes"
	stria stop "$vol"
	echo "array $1 on ${ARRAY[*]}: flushes $before -> $after"
}

# Flip every bit of byte BYTE of block BLOCK of DEV.
flip_byte() { # DEV BLOCK BYTE
	local old new
	dd if="$1" of=/tmp/blk bs=4096 skip="$2" count=1 iflag=direct status=none
	old=$(od -An -tu1 -j "$3" -N1 /tmp/blk | tr -d ' ')
	new=$((old ^ 0xff))
	# shellcheck disable=SC2059 # an octal escape made on purpose
	printf "\\$(printf %03o "$new")" | dd of=/tmp/blk bs=1 seek="$3" conv=notrunc status=none
	dd if=/tmp/blk of="$1" bs=4096 seek="$2" count=1 oflag=direct conv=notrunc status=none
	echo "byte $3 of block $2 of $1: $old -> $new"
}

# One line per stripe of stripe_map DIR: its copies and host blocks.
summary() { # DIR
	awk 'FNR == NR { n[$1]++; span[$1] = $4; next }
		$5 > 0 { h[$1] = h[$1] " " $3 "+" $4 }
		END { for (s in n) print "stripe " s ": " n[s] " header copies, strips of " \
			span[s] " blocks, host blocks" h[s] }' "$1/copies" "$1/pieces" | sort -k2,2n
}

# The stria lines of the kernel log since the last `dmesg -c`.
stria_log() { dmesg | grep -i stria || true; }

# In stripe SEQ (of stripe_map DIR of the members ARRAY), damage the
# header copy on the member whose strip holds the stripe's first piece of
# host blocks FIRST .. FIRST+COUNT-1, and check that stria dump sees it.
damage_copy() { # DIR SEQ FIRST COUNT
	local strip member dev block
	strip=$(awk -v s="$2" -v a="$3" -v b="$(($3 + $4))" \
		'$1 == s && $5 > 0 && $3 < b && $3 + $4 > a { print $2; exit }' "$1/pieces")
	member=$(awk -v s="$2" -v i="$strip" '$1 == s && $2 == i { print $3; exit }' "$1/strips")
	[ -n "$member" ] || die "stripe $2 holds none of blocks $3+$4"
	dev=${ARRAY[member]}
	block=$(awk -v s="$2" -v d="$dev" '$1 == s && $2 == d { print $3; exit }' "$1/copies")
	[ -n "$block" ] || die "stripe $2 has no header copy on $dev"
	# Byte 33 is in the sequence number: a reader that skipped the
	# checksum would take the copy for another stripe.
	flip_byte "$dev" "$block" 33
	stripe_map /tmp/map-damaged "$dev"
	grep -q "^$dev $block " /tmp/map-damaged/invalid || die "stria dump does not see the damage"
}

step "a: one header copy of a flushed stripe damaged"
make_array case-a /tmp/a
stripe_map /tmp/map-a "${ARRAY[@]}"
summary /tmp/map-a
# First the newest stripe, which only the clean stop says was flushed,
# then (one more copy) B's first, which later stripes say was flushed.
newest=$(stripes_holding /tmp/map-a $a_lba $a_len | tail -n1)
oldest=$(stripes_holding /tmp/map-a $b_lba $b_len | head -n1)
[ -n "$newest" ] || die "no stripe holds region A"
[ -n "$oldest" ] || die "no stripe holds region B"
for spec in "newest:$newest:$a_lba:$a_len" "oldest:$oldest:$b_lba:$b_len"; do
	IFS=: read -r what seq first count <<<"$spec"
	echo "the $what stripe: $seq"
	damage_copy /tmp/map-a "$seq" "$first" "$count"
	dmesg -c >/dev/null
	vol=$(assemble_shuffled "${ARRAY[@]}")
	stria_log
	expect "$vol" /tmp/a $a_off "region A reads back"
	expect "$vol" /tmp/b $b_off "region B reads back"
	stria_log | grep -i header | grep -qiE "$bad_words" ||
		die "the kernel log does not report the damaged header copy of stripe $seq"
	echo "ok: the kernel log reports it"
	stria stop "$vol"
done

step "b: every header copy of region B's stripes zeroed"
make_array case-b /tmp/a
stripe_map /tmp/map-b "${ARRAY[@]}"
summary /tmp/map-b
gone=" $(stripes_holding /tmp/map-b $b_lba $b_len | tr '\n' ' ')"
[ -n "${gone// /}" ] || die "no stripe holds region B"
for s in $(stripes_holding /tmp/map-b $a_lba $a_len); do
	[[ $gone != *" $s "* ]] || die "stripe $s holds both regions: the fsync did not close it"
done
n=0
while read -r s dev block _; do
	[[ $gone == *" $s "* ]] || continue
	dd if=/dev/zero of="$dev" bs=4096 seek="$block" count=1 oflag=direct conv=notrunc status=none
	n=$((n + 1))
done </tmp/map-b/copies
echo "zeroed $n header copies of stripes$gone"
stripe_map /tmp/map-b2 "${ARRAY[@]}"
for s in $gone; do
	if awk -v s="$s" '$1 == s { found = 1 } END { exit !found }' /tmp/map-b2/copies; then
		die "stria dump still finds stripe $s"
	fi
done
dmesg -c >/dev/null
vol=$(assemble_shuffled "${ARRAY[@]}")
stria_log
# Region A was written after B: its first stripe links to B's last one.
stria_log | grep -q "is gone" || die "the kernel log does not report the lost stripes"
echo "ok: the kernel log reports the gap"
expect "$vol" /tmp/a $a_off "region A reads back"
expect "$vol" /tmp/zero $b_off "region B reads as never written"
stria stop "$vol"

step "c: a stripe of another array in free space of the members"
make_array case-c /tmp/a
own=("${ARRAY[@]}")
stripe_map /tmp/map-c "${own[@]}"
summary /tmp/map-c
make_array case-c-foreign /tmp/a.foreign filler
foreign=("${ARRAY[@]}")
stripe_map /tmp/map-f "${foreign[@]}"
summary /tmp/map-f
# Where the free space of each member of the first array begins.
fronts=""
for dev in "${own[@]}"; do
	fronts+=" $(awk -v d="$dev" '$2 == d && $3 + $4 > m { m = $3 + $4 } END { print m + 0 }' \
		/tmp/map-c/copies)"
done
# Stripes of the foreign array whose strips all lie in that free space.
fits=$(awk -v fronts="$fronts" '
	BEGIN { split(fronts, f, " ") }
	!($1 in ok) { ok[$1] = 1 }
	$4 < f[$3 + 1] { ok[$1] = 0 }
	END { for (s in ok) if (ok[s]) print s }' /tmp/map-f/strips | sort -n)
[ -n "$fits" ] || die "no stripe of the foreign array lies beyond blocks$fronts"
# Best one that holds the foreign data for region A: accepted, it would win.
seq=""
for s in $(stripes_holding /tmp/map-f $a_lba $a_len); do
	if grep -qx "$s" <<<"$fits"; then seq=$s; fi
done
if [ -z "$seq" ]; then
	seq=$(tail -n1 <<<"$fits")
	echo "note: no stripe holding region A fits, taking stripe $seq"
fi
newest=$(tail -n1 /tmp/map-c/copies | cut -d' ' -f1)
echo "foreign stripe $seq (the array's own newest is $newest), free space from blocks$fronts"
copied=()
while read -r s i m lba span; do
	[ "$s" = "$seq" ] || continue
	dd if="${foreign[m]}" of="${own[m]}" bs=4096 skip="$lba" seek="$lba" count="$span" \
		iflag=direct oflag=direct conv=notrunc status=none
	echo "copied strip $i: member $m, blocks $lba+$span"
	copied+=("${own[m]} $lba")
done </tmp/map-f/strips
stripe_map /tmp/map-c2 "${own[@]}"
for c in "${copied[@]}"; do
	grep -q "^$seq $c " /tmp/map-c2/copies || die "stria dump does not find the copied header at $c"
done
dmesg -c >/dev/null
vol=$(assemble_shuffled "${own[@]}")
stria_log
expect "$vol" /tmp/a $a_off "region A reads back, not the foreign data"
expect "$vol" /tmp/b $b_off "region B reads back"
stria stop "$vol"

remove_slices
echo ok

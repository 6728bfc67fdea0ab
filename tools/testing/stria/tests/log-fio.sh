#!/bin/bash
# fio with crc32c verification on log-structured arrays: RAID-5 on four
# members and RAID-6 on five.  Random 4k, random 64k and sequential 1M
# writes into separate regions, each verified once written; the writes end
# with an fsync that must reach the driver as a flush; then the array is
# stopped, re-assembled with its members in a random order, and every
# region is verified again.
#
# The members are dm-linear slices of the VM's disks (see `slices` in
# lib/common.sh): both arrays fit side by side on fresh space, five members
# exist even on four disks, and assembly has less to scan.
source "$STRIA_LIB/common.sh"

# name rw bs offset size, for each region; the regions do not overlap.
regions=(
	"rand4k randwrite 4k 0 32M"
	"rand64k randwrite 64k 32M 48M"
	"seq1m write 1M 80M 96M"
)
need_mib=176
names=$(printf '%s\n' "${regions[@]}" | cut -d' ' -f1 | paste -sd,)
mib=$(slice_size 9 512)

# fio over every region of VOL, one after the other; WHAT says what for,
# further fio options follow.
fio_regions() { # VOL WHAT [FIO OPTION...]
	local vol=$1 what=$2 jobs=() r name rw bs offset size
	shift 2
	for r in "${regions[@]}"; do
		read -r name rw bs offset size <<<"$r"
		jobs+=(--name="$name" --rw="$rw" --bs="$bs" --offset="$offset" --size="$size" --stonewall)
	done
	fio --filename="$vol" --direct=1 --ioengine=io_uring --iodepth=16 --randseed=4242 \
		--verify=crc32c --verify_fatal=1 --do_verify=1 "$@" "${jobs[@]}" --output=/tmp/fio.out ||
		{ cat /tmp/fio.out; die "fio on $vol: $what"; }
	grep -E '^ *(WRITE|READ):' /tmp/fio.out || true
}

run() { # RAID MEMBERS
	local raid=$1 n=$2 vol size before after json flat devs tab=$'\t'
	slices "$n" "$mib"
	devs=("${SLICES[@]}")

	step "raid$raid on $n members of $mib MiB: ${devs[*]}"
	vol=$(fresh_array --raid "$raid" --name "fio-raid$raid" "${devs[@]}")
	size=$(blockdev --getsize64 "$vol")
	((size >= need_mib * 1048576)) || die "$vol has $size bytes, the regions need $need_mib MiB"
	echo "ok: $vol, $size bytes"

	before=$(status_field "$vol" flushes)
	step "raid$raid: $names written, each ended by an fsync, and verified"
	fio_regions "$vol" "written and verified" --end_fsync=1

	step "raid$raid: the fsyncs reached the driver and the array is still there"
	after=$(status_field "$vol" flushes)
	[ "${after:-0}" -ge $((before + ${#regions[@]})) ] ||
		die "${#regions[@]} fsyncs sent ${after:-no} flushes (before: $before)"
	json=$(stria status --json "$vol")
	flat=$(json_flat <<<"$json")
	grep -qx "0\.volume$tab$vol" <<<"$flat" || { echo "$json"; die "status --json does not report $vol"; }
	[ "$(grep -c "^0\.members\.[0-9]*\.device$tab" <<<"$flat")" = "$n" ] ||
		{ echo "$json"; die "status --json does not report $n members"; }
	[ "$(sed -n "s/^0\.errors$tab//p" <<<"$flat")" = 0 ] || { echo "$json"; die "I/O errors counted"; }
	echo "ok: flushes $before -> $after, $n members, no errors"

	stria stop "$vol"
	# The first stripes, of 4k writes, are full ones.  (Few: each has 160
	# pieces, and the guest's awk is slow.)
	stria dump --json --limit 2 "${devs[0]}" 2>/dev/null | json_flat | awk -F '\t' -v r="$raid" -v n="$n" '
		{ split($1, p, ".") }
		p[1] == "headers" && p[3] == "raid" && $2 == r { raid[p[2]] = 1 }
		p[1] == "headers" && p[3] == "strips" && p[5] == 0 { strips[p[2]]++ }
		END { for (h in raid) if (strips[h] == n) found = 1; exit !found }' ||
		die "no raid$raid stripe $n strips wide on ${devs[0]}"
	echo "ok: raid$raid stripes, $n strips wide"

	vol=$(assemble_shuffled "${devs[@]}")
	step "raid$raid: $names verified after stop and re-assembly"
	fio_regions "$vol" "verified after re-assembly" --verify_only=1
	stria stop "$vol"
	echo "ok: raid$raid"
}

run 5 4
run 6 5
remove_slices
echo ok

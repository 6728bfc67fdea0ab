#!/bin/bash
# Runs inside the VM (see ./bench): instant copies.  How long a copy of a
# full 1 GiB and a full 8 GiB volume takes (median of five); random 4k
# write IOPS on the first overwrite pass after 0, 1 and 8 copies in each
# metadata form (five rounds), with the map memory of all volumes after the pass, each
# on a fresh array with the volume written whole; the map memory of a copy
# after 1% of it was written, in each form, and how long finding what
# changed takes (`stria copy diff`, against reading both volumes whole);
# dm-thin (64 KiB blocks, on md RAID-5 over the same members)
# with 0 and 1 snapshot in the same run, and thin_delta on a snapshot
# after 1% of its origin was written.
source "$STRIA_LIB/common.sh"

runtime=${1:-10}
GiB=1073741824
modprobe raid456
modprobe dm-thin-pool

fill() { # DEV BYTES
	fio --name=fill --filename="$1" --direct=1 --ioengine=io_uring --rw=write \
		--bs=1M --iodepth=8 --size="$2" >/dev/null 2>&1 || die "filling $1 failed"
}
first_pass() { # DEV BYTES: write IOPS, every block written at most once
	fio --name=first --filename="$1" --direct=1 --ioengine=io_uring \
		--rw=randwrite --bs=4k --iodepth=32 --size="$2" --norandommap=0 \
		--randrepeat=0 --time_based --runtime="$runtime" --minimal 2>/dev/null |
		awk -F';' '{print int($49)}'
}
wipe() { for m in "${MEMBERS[@]}"; do dd if=/dev/zero of="$m" bs=1M count=2 status=none; done; }

now_us() { local t=$EPOCHREALTIME; echo $((10#${t/./})); }

# Copy latency: the helper times the ioctl.
latency() { # GIB
	local vol t=() i
	vol=$(fresh_array --force --raid 5 --strip 64)
	stria volume resize "$vol" --size "$1G"
	fill "$vol" $(($1 * GiB))
	for i in 1 2 3 4 5; do
		t+=("$(stria copy create --json "$vol" "lat$i" | sed -n 's/.*"micros": \([0-9]*\).*/\1/p')")
	done
	stria stop "$vol"
	echo "COPYLAT $1 $(printf '%s\n' "${t[@]}" | sort -n | sed -n 3p)"
}
latency 1
latency 8

map_bytes() { # ARRAY [NAME]: map memory of every volume, or of NAME
	stria volume list --json "$1" | json_flat |
		awk -F '\t' -v n="${2:-}" '
			$1 ~ /\.name$/ { name = $2 }
			$1 ~ /\.map_bytes$/ && (n == "" || name == n) { s += $2 }
			END { print s + 0 }'
}

iops_after() { # COPIES FORM [TRACK]
	local vol i
	vol=$(fresh_array --force --raid 5 --strip 64)
	stria volume resize "$vol" --size 1G
	fill "$vol" "$GiB"
	for ((i = 1; i <= $1; i++)); do
		stria copy create --form "$2" --track "${3:-auto}" "$vol" "c$i" >/dev/null
	done
	local label=stria-$2
	[ -n "${3:-}" ] && label=stria-$2-$3
	(($1)) || label=stria
	echo "COPYIOPS $label $1 $(first_pass "$vol" "$GiB")"
	echo "COPYMAP $label $1 $(map_bytes "$vol")"
	stria stop "$vol"
}
# What the divergence maps cost the writes: 8 full-form copies without
# them too.  A single pass varies by tens of percent, and one run right
# after another is slower or faster by what the last left behind: every
# row five times, each round in another order (each row in five of the
# six places); the summary takes the median.
rows=("0 full" "1 full" "1 changed" "8 full" "8 changed" "8 full none")
for r in 0 1 2 3 4; do
	for ((k = 0; k < ${#rows[@]}; k++)); do
		# shellcheck disable=SC2086 # a row is its arguments
		iops_after ${rows[(k + r * 5) % ${#rows[@]}]}
	done
done

# A copy that changes little: 1% of its blocks written at random.
sparse() { # FORM
	local vol c
	vol=$(fresh_array --force --raid 5 --strip 64)
	stria volume resize "$vol" --size 1G
	fill "$vol" "$GiB"
	c=$(stria copy create --form "$1" "$vol" sparse)
	fio --name=sparse --filename="$c" --direct=1 --ioengine=io_uring \
		--rw=randwrite --bs=4k --iodepth=16 --io_size=$((GiB / 100)) \
		--randrepeat=0 >/dev/null 2>&1 || die "writing the copy failed"
	echo "COPYSPARSE $1 $(map_bytes "$vol" sparse)"
	local t=() i t0
	for i in 1 2 3; do
		t0=$(now_us)
		stria copy diff --json "$vol" "$c" >/tmp/diff.json 2>/tmp/diff.err || die "copy diff failed"
		t+=($(($(now_us) - t0)))
	done
	echo "COPYDIFF stria-$1 $(printf '%s\n' "${t[@]}" | sort -n | sed -n 2p)"
	if [ "$1" = full ]; then
		# Without the maps, finding what changed means reading both.
		t0=$(now_us)
		for d in "$vol" "$c"; do
			dd if="$d" of=/dev/null bs=1M iflag=direct status=none || die "reading $d failed"
		done
		echo "COPYDIFF read $(($(now_us) - t0))"
	fi
	stria stop "$vol"
}
sparse full
sparse changed

# Divergence maps: a copy of a full 1 GiB volume in each form, 1% of its
# blocks written at random, or 1% written in one run (a few areas); their
# size, and `copy diff` looking where they marked against comparing the
# maps whole (--maps) on the same copy.
diverged() { # PATTERN
	local vol c t f
	vol=$(fresh_array --force --raid 5 --strip 64)
	stria volume resize "$vol" --size 1G
	fill "$vol" "$GiB"
	for t in bitmap multi partial; do
		c=$(stria copy create --form changed --track "$t" "$vol" "d-$t")
		if [ "$1" = random ]; then
			fio --name=sparse --filename="$c" --direct=1 --ioengine=io_uring \
				--rw=randwrite --bs=4k --iodepth=16 --io_size=$((GiB / 100)) \
				--randrepeat=0 >/dev/null 2>&1 || die "writing the copy failed"
		else
			fio --name=run --filename="$c" --direct=1 --ioengine=io_uring \
				--rw=write --bs=64k --iodepth=16 --offset=$((GiB / 2)) \
				--size=$((GiB / 100)) >/dev/null 2>&1 || die "writing the copy failed"
		fi
		local bytes form
		bytes=$(stria copy show --json "$c" | json_flat | awk -F '\t' '$1 == "divergence_bytes" { print $2 }')
		form=$(stria copy show --json "$c" | json_flat | awk -F '\t' '$1 == "divergence" { print $2 }')
		for f in track maps; do
			local ts=() i t0 opt=()
			[ "$f" = maps ] && opt=(--maps)
			for i in 1 2 3; do
				t0=$(now_us)
				stria copy diff --json "${opt[@]}" "$vol" "$c" >/tmp/diff.json 2>/dev/null ||
					die "copy diff failed"
				ts+=($(($(now_us) - t0)))
			done
			echo "COPYTRACK $1 $t $form $bytes $f $(printf '%s\n' "${ts[@]}" | sort -n | sed -n 2p)"
		done
	done
	# What starting the helper and one call cost, from a diff of one block.
	local ts=() i t0
	for i in 1 2 3; do
		t0=$(now_us)
		stria copy diff --json "$vol" "$vol" >/dev/null 2>&1 || die "copy diff failed"
		ts+=($(($(now_us) - t0)))
	done
	echo "COPYTRACK $1 self - 0 none $(printf '%s\n' "${ts[@]}" | sort -n | sed -n 2p)"
	stria stop "$vol"
}
diverged random
diverged run

# dm-thin on md RAID-5 over the same members: 64 MiB of metadata, the rest
# data, 64 KiB blocks.
thin_after() { # SNAPSHOTS (0 or 1)
	local md data
	wipe
	mdadm --create /dev/md0 --run --force --level=5 --chunk=64 --raid-devices=4 \
		--assume-clean --metadata=1.2 "${MEMBERS[@]}" >/dev/null 2>&1
	md=$(blockdev --getsz /dev/md0)
	data=$((md - 131072))
	dmsetup create bmeta --table "0 131072 linear /dev/md0 0"
	dmsetup create bdata --table "0 $data linear /dev/md0 131072"
	dd if=/dev/zero of=/dev/mapper/bmeta bs=4k count=1 oflag=direct status=none
	dmsetup create bpool --table "0 $data thin-pool /dev/mapper/bmeta /dev/mapper/bdata 128 0"
	dmsetup message /dev/mapper/bpool 0 "create_thin 0"
	dmsetup create bthin --table "0 $((GiB / 512)) thin /dev/mapper/bpool 0"
	fill /dev/mapper/bthin "$GiB"
	if (($1)); then
		dmsetup suspend /dev/mapper/bthin
		dmsetup message /dev/mapper/bpool 0 "create_snap 1 0"
		dmsetup resume /dev/mapper/bthin
	fi
	echo "COPYIOPS dm-thin $1 $(first_pass /dev/mapper/bthin "$GiB")"
	if (($1)); then
		# What changed since the snapshot, from a metadata snapshot: the
		# first pass wrote far more than 1%, so start again from a fresh
		# snapshot of the origin.
		local t0 t=() i
		dmsetup message /dev/mapper/bpool 0 "delete 1"
		dmsetup suspend /dev/mapper/bthin
		dmsetup message /dev/mapper/bpool 0 "create_snap 1 0"
		dmsetup resume /dev/mapper/bthin
		fio --name=sparse --filename=/dev/mapper/bthin --direct=1 --ioengine=io_uring \
			--rw=randwrite --bs=4k --iodepth=16 --io_size=$((GiB / 100)) \
			--randrepeat=0 >/dev/null 2>&1 || die "writing the origin failed"
		dmsetup message /dev/mapper/bpool 0 reserve_metadata_snap
		for i in 1 2 3; do
			t0=$(now_us)
			thin_delta -m --snap1 1 --snap2 0 /dev/mapper/bmeta >/tmp/delta.xml ||
				die "thin_delta failed"
			t+=($(($(now_us) - t0)))
		done
		dmsetup message /dev/mapper/bpool 0 release_metadata_snap
		echo "COPYDIFF thin_delta $(printf '%s\n' "${t[@]}" | sort -n | sed -n 2p)"
	fi
	dmsetup remove bthin
	dmsetup remove bpool
	dmsetup remove bdata
	dmsetup remove bmeta
	mdadm --stop /dev/md0 >/dev/null 2>&1
}
thin_after 0
thin_after 1

#!/bin/bash
# Runs inside the VM (see ./bench): the same fio workloads on the same four
# members as stria (RAID-5 stripes), md RAID-5 and md RAID-0, one after the
# other.
source "$STRIA_LIB/common.sh"

runtime=${1:-10}
modprobe raid456
modprobe raid0

# fio terse output: field 8 is read IOPS, 48 write KiB/s, 49 write IOPS.
fio_run() { # device rw bs iodepth field
	fio --name=bench --filename="$1" --direct=1 --ioengine=io_uring \
		--rw="$2" --bs="$3" --iodepth="$4" --size=1G --time_based \
		--runtime="$runtime" --ramp_time=2 --randrepeat=0 --minimal 2>/dev/null |
		awk -F';' -v f="$5" '{print int($f)}'
}

measure() { # label device
	local r w s
	w=$(fio_run "$2" randwrite 4k 32 49)
	s=$(fio_run "$2" write 1M 8 48)
	# Reads must hit written blocks: an unwritten stria block reads as
	# zeros without member I/O.
	fio --name=fill --filename="$2" --direct=1 --ioengine=io_uring --rw=write \
		--bs=1M --iodepth=8 --size=1G >/dev/null 2>&1
	r=$(fio_run "$2" randread 4k 32 8)
	echo "RESULT $1 $w $((s / 1024)) $r"
}

wipe() { for m in "${MEMBERS[@]}"; do dd if=/dev/zero of="$m" bs=1M count=2 status=none; done; }

# Same strip size as md's chunk.
vol=$(fresh_array --raid 5 --strip 64)
measure stria "$vol"
stria stop "$vol"

# Space an fsync-heavy workload costs: member bytes taken (whole chunks, as
# allocated) per host byte written, with an fsync after every 4 KiB write
# and without, before any collection.
free_bytes() { # volume: the pool's free space
	stria status --json "$1" | grep -A1 '"pool_bytes"' |
		sed -n 's/.*"free_bytes": \([0-9]*\).*/\1/p'
}
space() { # label fio-options...
	local vol before after label=$1
	shift
	vol=$(fresh_array --force --raid 5 --strip 64)
	before=$(free_bytes "$vol")
	fio --name=space --filename="$vol" --direct=1 --ioengine=psync --rw=randwrite \
		--bs=4k --size=256M --io_size=8M --randrepeat=0 "$@" >/dev/null 2>&1
	sync
	blockdev --flushbufs "$vol"
	after=$(free_bytes "$vol")
	echo "SPACE $label $(( (before - after) * 100 / (8 * 1048576) ))"
	stria stop "$vol"
}
space fsync --fsync=1
space nofsync

# Steady state under overwrites: on a small pool (four slices), a region
# of PCT% of what stria's pool holds is written whole, overwritten at
# random once to reach steady state, then measured; md RAID-5 on the same
# slices gets the same region and the same job.  Write amplification is
# member blocks over host blocks written in the measured window.
steady_fio() { # device region-bytes io_size|runtime
	fio --name=steady --filename="$1" --direct=1 --ioengine=io_uring \
		--rw=randwrite --bs=4k --iodepth=32 --size="$2" --randrepeat=0 \
		"${@:3}" --minimal 2>/dev/null | awk -F';' '{print int($49)}'
}
steady() { # PCT
	local pct=$1 vol usable region h0 m0 h1 m1 w md
	vol=$(fresh_array --force --raid 5 --strip 64 "${SLICES[@]}")
	usable=$(($(status_field "$vol" pool_bytes) * 3 / 4 * 16 / 17))
	region=$((usable * pct / 100 / 1048576 * 1048576))
	stria volume resize "$vol" --size "$region"
	fio --name=fill --filename="$vol" --direct=1 --ioengine=io_uring --rw=write \
		--bs=1M --iodepth=8 >/dev/null 2>&1
	steady_fio "$vol" "$region" --io_size="$region" >/dev/null
	h0=$(status_field "$vol" host_bytes_written)
	m0=$(status_field "$vol" member_bytes_written)
	w=$(steady_fio "$vol" "$region" --time_based --runtime="$runtime")
	h1=$(status_field "$vol" host_bytes_written)
	m1=$(status_field "$vol" member_bytes_written)
	stria stop "$vol"
	for m in "${SLICES[@]}"; do dd if=/dev/zero of="$m" bs=1M count=2 status=none; done
	mdadm --create /dev/md2 --run --force --level=5 --chunk=64 --raid-devices=4 \
		--assume-clean --metadata=1.2 "${SLICES[@]}" >/dev/null 2>&1
	fio --name=fill --filename=/dev/md2 --direct=1 --ioengine=io_uring --rw=write \
		--bs=1M --iodepth=8 --size="$region" >/dev/null 2>&1
	md=$(steady_fio /dev/md2 "$region" --time_based --runtime="$runtime")
	mdadm --stop /dev/md2 >/dev/null 2>&1
	((h1 > h0)) || { echo "steady $pct%: the host wrote nothing"; return; }
	echo "STEADY $pct $w $md $(( (m1 - m0) * 100 / (h1 - h0) ))"
}
slices 4 64
for pct in 50 70 90; do steady "$pct"; done
remove_slices

wipe
mdadm --create /dev/md0 --run --force --level=5 --chunk=64 --raid-devices=4 \
	--assume-clean --metadata=1.2 "${MEMBERS[@]}" >/dev/null 2>&1
measure md-raid5 /dev/md0
mdadm --stop /dev/md0 >/dev/null 2>&1

wipe
mdadm --create /dev/md1 --run --force --level=0 --chunk=64 --raid-devices=4 \
	--metadata=1.2 "${MEMBERS[@]}" >/dev/null 2>&1
measure md-raid0 /dev/md1
mdadm --stop /dev/md1 >/dev/null 2>&1

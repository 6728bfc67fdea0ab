#!/bin/bash
# Free-space collection under an overwrite soak: on a small pool (four
# slices of the members), a region of 70% and then 90% of what the pool
# holds is written whole, then overwritten at random 4k for four times the
# pool's capacity (ten under `make check-full`), with fio verifying every
# block (crc32c, with a backlog so reads interleave the writes).  No verify
# error and no ENOSPC; the status shows collection at work and the write
# amplification; after a stop and re-assembly every block still verifies
# and the live count matches the blocks the map points at.
source "$STRIA_LIB/common.sh"

factor=4
full && factor=10
slice_mib=32
slices 4 "$slice_mib"
devs=("${SLICES[@]}")

soak() { # PERCENT
	local pct=$1 vol usable region total flat
	step "$pct% full: region written, then overwritten $factor times the pool"
	vol=$(fresh_array --force --raid 5 --strip 64 "${devs[@]}")
	# What the pool holds: data blocks of full stripes over its chunks.
	usable=$(($(status_field "$vol" pool_bytes) * 3 / 4 * 16 / 17))
	region=$((usable * pct / 100 / 1048576 * 1048576))
	total=$((usable * factor / 1048576))
	stria volume resize "$vol" --size "$region"
	echo "pool holds $usable bytes; region $region bytes; overwriting ${total} MiB"
	fio --filename="$vol" --direct=1 --ioengine=io_uring --iodepth=16 --name=fill \
		--rw=write --bs=1M --verify=crc32c --do_verify=0 --output=/tmp/fill.out --eta=never ||
		{ cat /tmp/fill.out; die "filling the region failed"; }
	# With verification fio counts the reads in io_size too: twice the
	# total makes the writes alone come to it.
	fio --filename="$vol" --direct=1 --ioengine=io_uring --iodepth=16 --name=soak \
		--rw=randwrite --bs=4k --io_size="$((total * 2))M" --randseed=$pct \
		--verify=crc32c --verify_backlog=4096 --verify_fatal=1 --do_verify=1 \
		--output=/tmp/soak.out --eta=never ||
		{ cat /tmp/soak.out; stria status "$vol"; die "the soak failed at $pct%"; }
	grep -E '^ *(WRITE|READ):|err=' /tmp/soak.out
	written=$(status_field "$vol" host_bytes_written)
	echo "host wrote $((written >> 20)) MiB: $((written / usable)) times what the pool holds"
	((written >= usable * factor)) || die "the soak wrote only $written bytes"
	stria status "$vol"
	flat=$(stria status --json "$vol" | json_flat)
	grep -q "^0\.space\.gc_stripes	[1-9]" <<<"$flat" || die "collection never ran"
	grep "^0\.write_amplification" <<<"$flat"

	step "$pct%: every block verifies after a stop and re-assembly"
	stria stop "$vol"
	vol=$(assemble_shuffled "${devs[@]}")
	fio --filename="$vol" --direct=1 --ioengine=io_uring --iodepth=16 --name=check \
		--rw=read --bs=4k --verify=crc32c --verify_fatal=1 --verify_only=1 \
		--output=/tmp/check.out --eta=never ||
		{ cat /tmp/check.out; die "blocks do not verify after re-assembly"; }
	local live mapped
	live=$(status_field "$vol" live_bytes)
	mapped=$(status_field "$vol" mapped_blocks)
	echo "live $live bytes, $mapped blocks mapped"
	((live == mapped * 4096)) || die "live bytes $live, but $mapped blocks are mapped"
	stria gc "$vol" --until-free 100
	stria status "$vol"
	stria stop "$vol"
}

soak 70
soak 90
remove_slices

# Shared steps of the tests over trees of instant copies under free-space
# collection (source after common.sh). A tree lives on a small RAID-5
# array of four 32 MiB slices; its volumes are in the associative array
# `dev` (index -> device), their checksums in `want`, taken over the first
# $region bytes.

declare -A dev want

# Makes the array and cuts its volume to PERCENT of what the pool holds;
# sets devs, vol, arr, usable and region.
tree_array() { # PERCENT
	slices 4 32
	devs=("${SLICES[@]}")
	vol=$(fresh_array --force --raid 5 --strip 64 "${devs[@]}")
	arr=${vol#/dev/stria}
	usable=$(($(status_field "$vol" pool_bytes) * 3 / 4 * 16 / 17))
	region=$((usable * $1 / 100 / 1048576 * 1048576))
	stria volume resize "$vol" --size "$region"
	echo "pool holds $usable bytes; region $region bytes"
}

tree_sum() { head -c "$region" "$1" | md5sum | cut -d' ' -f1; }

tree_fill() { # DEV
	fio --filename="$1" --direct=1 --ioengine=io_uring --iodepth=16 --name=fill \
		--rw=write --bs=1M --output=/tmp/fill.out --eta=never || die "filling $1 failed"
}

tree_randwrite() { # DEV SEED BYTES
	fio --filename="$1" --direct=1 --ioengine=io_uring --iodepth=16 --name=w \
		--rw=randwrite --bs=4k --size="$region" --io_size="$3" --randseed="$2" \
		--output=/tmp/w.out --eta=never || { cat /tmp/w.out; die "writing $1 failed"; }
}

# Every volume of the tree still reads as its checksum says.
tree_check() { # WHAT
	local i
	for i in "${!dev[@]}"; do
		[ "$(tree_sum "${dev[$i]}")" = "${want[$i]}" ] || die "$1: ${dev[$i]} changed"
	done
	echo "$1: ${#dev[@]} volumes as they were"
}

# Overwrites the origin $vol three times what the pool holds and collects
# all that is worth it: collection has to move blocks the copies share.
tree_overwrite_origin() {
	local before moved
	before=$(status_field "$vol" gc_moved_bytes)
	tree_randwrite "$vol" 100 $((usable * 3))
	stria gc "$vol" --until-free 100
	moved=$(($(status_field "$vol" gc_moved_bytes) - before))
	echo "collection moved $moved bytes"
	((moved > 0)) || die "collection moved nothing"
	tree_check "after collection"
	want[0]=$(tree_sum "$vol")
	dev[0]=$vol
}

# Deletes the volumes INDEX... one by one, collecting after each.
tree_delete_collecting() { # INDEX...
	local i
	for i in "$@"; do
		stria volume delete "${dev[$i]}"
		unset "dev[$i]"
		stria gc "$arr" --until-free 100 >/dev/null
		tree_check "${i} deleted"
	done
}

tree_reassemble() { # WHAT
	stria stop "$arr"
	assemble_shuffled "${devs[@]}" >/dev/null
	tree_check "$1"
}

# Deletes what is left of the tree: nothing may stay live.
tree_delete_all() {
	local i live
	for i in "${!dev[@]}"; do
		stria volume delete "${dev[$i]}"
		unset "dev[$i]"
	done
	stria gc "$arr" --until-free 100 >/dev/null
	live=$(stria status --json "$arr" | json_flat | awk -F '\t' '$1 ~ /live_bytes$/ { print $2 }')
	echo "live with every volume deleted: $live bytes"
	[ "$live" = 0 ] || die "$live bytes live with no volume left"
}

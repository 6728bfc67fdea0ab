#!/bin/bash
# Copies of copies under free-space collection: on a small pool, a chain
# of eight copies, each made of the one before after that one wrote its own
# share of blocks, the metadata forms alternating along the chain; then the origin is overwritten several times what the
# pool holds, so that collection has to move blocks the copies share.
# Every copy keeps its content (checksums), through collection, stop and
# re-assembly, and deletes in mixed order (a source with copies alive
# among them); once all are deleted nothing is live any more.
source "$STRIA_LIB/common.sh"

slices 4 32
devs=("${SLICES[@]}")
vol=$(fresh_array --force --raid 5 --strip 64 "${devs[@]}")
arr=${vol#/dev/stria}
usable=$(($(status_field "$vol" pool_bytes) * 3 / 4 * 16 / 17))
region=$((usable * 30 / 100 / 1048576 * 1048576))
stria volume resize "$vol" --size "$region"
echo "pool holds $usable bytes; region $region bytes"

jfield() { json_flat | awk -F '\t' -v k="$1" '$1 == k { print $2 }'; }
sum() { head -c "$region" "$1" | md5sum | cut -d' ' -f1; }

randwrite() { # DEV SEED BYTES
	fio --filename="$1" --direct=1 --ioengine=io_uring --iodepth=16 --name=w \
		--rw=randwrite --bs=4k --size="$region" --io_size="$3" --randseed="$2" \
		--output=/tmp/w.out --eta=never || { cat /tmp/w.out; die "writing $1 failed"; }
}

step "the origin written whole, then a chain of eight copies"
fio --filename="$vol" --direct=1 --ioengine=io_uring --iodepth=16 --name=fill \
	--rw=write --bs=1M --output=/tmp/fill.out --eta=never || die "filling failed"
declare -A dev want
prev=$vol
for i in 1 2 3 4 5 6 7 8; do
	form=full
	((i % 2)) && form=changed
	dev[$i]=$(stria copy create --form $form "$prev" "lvl$i")
	randwrite "${dev[$i]}" "$i" $((region / 8))
	prev=${dev[$i]}
done
for i in 1 2 3 4 5 6 7 8; do want[$i]=$(sum "${dev[$i]}"); done
stria copy list

check_all() { # WHAT
	local i
	for i in "${!dev[@]}"; do
		[ "$(sum "${dev[$i]}")" = "${want[$i]}" ] || die "$1: lvl$i changed"
	done
	echo "$1: ${#dev[@]} copies as they were"
}

step "overwrite the origin three times what the pool holds"
before=$(status_field "$vol" gc_moved_bytes)
randwrite "$vol" 100 $((usable * 3))
stria gc "$vol" --until-free 100
stria status "$vol"
moved=$(($(status_field "$vol" gc_moved_bytes) - before))
echo "collection moved $moved bytes"
((moved > 0)) || die "collection moved nothing"
check_all "after collection"
want[0]=$(sum "$vol")
dev[0]=$vol

step "stop and re-assemble"
stria stop "$arr"
assemble_shuffled "${devs[@]}" >/dev/null
check_all "after re-assembly"

step "deletes in mixed order, collecting in between"
for i in 4 0 8 1 6; do
	stria volume delete "${dev[$i]}"
	unset "dev[$i]"
	stria gc "$arr" --until-free 100 >/dev/null
	check_all "lvl$i deleted"
done
stria stop "$arr"
assemble_shuffled "${devs[@]}" >/dev/null
check_all "after re-assembly with sources deleted"
randwrite "${dev[7]}" 107 $((region / 4))
want[7]=$(sum "${dev[7]}")
check_all "after writing to a copy of deleted sources"
for i in 2 7 3 5; do
	stria volume delete "${dev[$i]}"
	unset "dev[$i]"
done
stria gc "$arr" --until-free 100 >/dev/null
live=$(stria status --json "$arr" | json_flat | awk -F '\t' '$1 ~ /live_bytes$/ { print $2 }')
echo "live with every volume deleted: $live bytes"
[ "$live" = 0 ] || die "$live bytes live with no volume left"
stria status "$arr"
stria stop "$arr"
remove_slices
echo "copy-gc: OK"

#!/bin/bash
# Deletes in every order: a copy tree of four volumes - an origin, a copy
# of it, a copy of that copy and a second copy of the origin, each written
# in a 1 MiB region of its own after the copy points so that all four
# differ - deleted one by one in each of the 24 orders, the metadata forms
# alternating.  After each delete the volumes left hold what they held
# (checksums) and `stria volume list` reports for each exactly the blocks
# no other volume left holds (from a model of which region of which
# volume holds which write); once all four are gone nothing is live.
# Every sixth order stops and re-assembles the array half-way, and
# collection runs between deletes.
source "$STRIA_LIB/common.sh"

MiB=1048576
size=$((8 * MiB))

vol0=$(fresh_array)
arr=${vol0#/dev/stria}
stria volume delete "$vol0"

live() { stria status --json "$arr" | json_flat | awk -F '\t' '$1 ~ /live_bytes$/ { print $2 }'; }

regions=$((size / MiB))

write() { # DEV FIRST-REGION REGIONS
	fio --filename="$1" --direct=1 --ioengine=io_uring --iodepth=8 --name=w \
		--rw=write --bs=64k --offset=$(($2 * MiB)) --size=$(($3 * MiB)) \
		--refill_buffers --randrepeat=0 \
		--output=/tmp/w.out --eta=never || { cat /tmp/w.out; die "writing $1 failed"; }
}

# The blocks volume DEV alone points at (all it maps if it shares none).
unique_of() { # DEV
	stria volume list --json "$arr" | json_flat | awk -F '\t' -v d="$1" '
		{ split($1, p, "."); i = p[1]; k = p[2] }
		k == "device" { dev[i] = $2 }
		k == "mapped_blocks" { m[i] = $2 }
		k == "unique_blocks" { u[i] = $2 }
		END { for (i in dev) if (dev[i] == d) print (i in u) ? u[i] : m[i] }'
}

sum() { md5sum <"$1" | cut -d' ' -f1; }

# Each volume left reports as its own the blocks of the regions whose
# write no other volume left holds.
check_unique() { # WHAT
	local k j r mine got
	for k in "${!dev[@]}"; do
		mine=0
		for ((r = 0; r < regions; r++)); do
			for j in "${!dev[@]}"; do
				((j != k)) && [ "${ver[$j,$r]}" = "${ver[$k,$r]}" ] && continue 2
			done
			mine=$((mine + MiB / 4096))
		done
		got=$(unique_of "${dev[$k]}")
		[ "$got" = "$mine" ] ||
			die "order $n ($order), $1: volume $k reports ${got:-no} unique blocks, not $mine"
	done
}

orders=()
for a in 0 1 2 3; do
	for b in 0 1 2 3; do
		for c in 0 1 2 3; do
			for d in 0 1 2 3; do
				[ "$(printf '%s\n' $a $b $c $d | sort -u | wc -l)" = 4 ] &&
					orders+=("$a $b $c $d")
			done
		done
	done
done
((${#orders[@]} == 24)) || die "${#orders[@]} orders, not 24"

n=0
for order in "${orders[@]}"; do
	n=$((n + 1))
	f1=full f2=changed
	((n % 2)) && f1=changed f2=full
	# ver[K,R]: which write region R of volume K holds.
	declare -A dev=() want=() ver=()
	dev[0]=$(stria volume create "stria$arr" "o$n" --size "$size")
	write "${dev[0]}" 0 "$regions"
	for ((r = 0; r < regions; r++)); do ver[0,$r]=fill; done
	dev[1]=$(stria copy create --form $f1 "${dev[0]}" "a$n")
	for ((r = 0; r < regions; r++)); do ver[1,$r]=${ver[0,$r]}; done
	write "${dev[1]}" 0 1
	ver[1,0]=a
	dev[2]=$(stria copy create --form $f2 "${dev[1]}" "b$n")
	for ((r = 0; r < regions; r++)); do ver[2,$r]=${ver[1,$r]}; done
	write "${dev[2]}" 1 1
	ver[2,1]=b
	dev[3]=$(stria copy create --form $f2 "${dev[0]}" "c$n")
	for ((r = 0; r < regions; r++)); do ver[3,$r]=${ver[0,$r]}; done
	write "${dev[0]}" 2 1
	ver[0,2]=o
	write "${dev[3]}" 3 2
	ver[3,3]=c ver[3,4]=c
	for k in 0 1 2 3; do want[$k]=$(sum "${dev[$k]}"); done
	[ "$(printf '%s\n' "${want[@]}" | sort -u | wc -l)" = 4 ] ||
		die "order $n: the four volumes do not all differ"
	step=0
	check_unique "before deletes"
	for k in $order; do
		stria volume delete "${dev[$k]}" || die "order $n ($order): deleting $k failed"
		unset "dev[$k]"
		step=$((step + 1))
		if ((n % 6 == 0 && step == 2)); then
			stria stop "$arr"
			assemble_shuffled >/dev/null
		fi
		stria gc "$arr" --until-free 100 >/dev/null
		for j in "${!dev[@]}"; do
			[ "$(sum "${dev[$j]}")" = "${want[$j]}" ] ||
				die "order $n ($order): volume $j changed after $step deletes"
		done
		check_unique "after $step deletes"
	done
	l=$(live)
	[ "$l" = 0 ] || die "order $n ($order): $l bytes live with every volume deleted"
	echo "order $n ($order, forms $f1/$f2): survivors intact, unique blocks exact, nothing live at the end"
done
stria status "$arr"
stria stop "$arr"
echo "copy-orders: OK"

#!/bin/bash
# `stria copy diff`: where a copy and its source differ is exactly what
# either side wrote or trimmed since the copy point, as byte extents; a
# copy of the copy differs from it nowhere; an unrelated volume differs
# wherever either is written.  The answer is the same after collection
# moved the shared blocks and after stop and re-assembly, and bad requests
# fail with their errno.
source "$STRIA_LIB/common.sh"

MiB=1048576
KiB=1024

vol0=$(fresh_array)
arr=${vol0#/dev/stria}
src=$(stria volume create "stria$arr" src --size 64M)
fio --filename="$src" --direct=1 --ioengine=io_uring --name=fill --rw=write \
	--bs=1M --size=64M --output=/tmp/f.out --eta=never || die "filling failed"

# Extents of `copy diff A B` as "OFFSET+LENGTH" words, and its total.
extents() { stria copy diff --json "$1" "$2" | json_flat | awk -F '\t' '
	$1 ~ /^extents\.[0-9]+\.offset$/ { o = $2 }
	$1 ~ /^extents\.[0-9]+\.length$/ { printf "%s%d+%d", sep, o, $2; sep = " " }
	END { print "" }'; }
differ() { stria copy diff --json "$1" "$2" | json_flat | awk -F '\t' '$1 == "differ_bytes" { print $2 }'; }

expect() { # A B WANT WHAT
	local got
	got=$(extents "$1" "$2")
	[ "$got" = "$3" ] || die "$4: diff of $1 and $2 is '$got', not '$3'"
	echo "ok: $4: $got"
}

step "a fresh copy differs nowhere"
copy=$(stria copy create --form changed "$src" copy)
expect "$src" "$copy" "" "fresh copy"
[ "$(differ "$src" "$copy")" = 0 ] || die "fresh copy: differ_bytes not 0"

step "writes and a trim on either side"
w() { # DEV OFFSET BYTES
	dd if=/dev/urandom of="$1" bs=4k seek=$(($2 / 4096)) count=$(($3 / 4096)) \
		oflag=direct conv=notrunc status=none || die "writing $1 failed"
}
w "$src" $((4 * MiB)) $((1 * MiB))
w "$src" $((20 * MiB)) $((4 * KiB))
w "$copy" $((10 * MiB)) $((2 * MiB))
# Rewritten on both sides: still a difference (two different blocks).
w "$copy" $((4 * MiB + 512 * KiB)) $((8 * KiB))
blkdiscard -o $((40 * MiB)) -l $((1 * MiB)) "$copy" || die "discard failed"
want="$((4 * MiB))+$((1 * MiB)) $((10 * MiB))+$((2 * MiB)) $((20 * MiB))+4096 $((40 * MiB))+$((1 * MiB))"
expect "$src" "$copy" "$want" "after writes"
expect "$copy" "$src" "$want" "the other way round"
[ "$(differ "$src" "$copy")" = $((4 * MiB + 4096)) ] || die "differ_bytes wrong"

step "a copy of the copy, and an unrelated volume"
deep=$(stria copy create --form full "$copy" deep)
expect "$copy" "$deep" "" "copy of the copy"
expect "$src" "$deep" "$want" "source and copy of the copy"
other=$(stria volume create "stria$arr" other --size 8M)
expect "$src" "$other" "0+$((8 * MiB))" "unrelated, empty volume"
w "$other" 0 $((8 * MiB))
blkdiscard -o $((1 * MiB)) -l $((1 * MiB)) "$src" || die "discard failed"
expect "$other" "$src" "0+$((8 * MiB))" "unrelated, both written"

step "after collection and re-assembly"
for d in "$copy" "$deep"; do
	blkdiscard -o $((1 * MiB)) -l $((1 * MiB)) "$d" || die "discard failed"
done
stria volume delete "$other"
stria gc "$arr" --until-free 100 >/dev/null
expect "$src" "$copy" "$want" "after collection"
stria stop "$arr"
assemble_shuffled >/dev/null
expect "$src" "$copy" "$want" "after re-assembly"
expect "$copy" "$deep" "" "copy of the copy after re-assembly"

step "bad requests"
stria copy diff "$src" "stria$arr/nothing" 2>/tmp/e.out && die "diff with a missing volume succeeded"
grep -q "No such file or directory\|ENOENT" /tmp/e.out || { cat /tmp/e.out; die "missing volume: wrong error"; }
echo "ok: a missing volume: $(cat /tmp/e.out)"
stria stop "$arr"
echo "copy-diff: OK"

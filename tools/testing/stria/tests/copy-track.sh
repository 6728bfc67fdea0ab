#!/bin/bash
# Divergence maps: every copy form (full bit map, multi-level, partial
# area, none) marks what either side changes, `copy show` reports its form
# and size, and `copy diff` answered from it is exactly the diff of the
# maps.  The driver picks the form by size and by how much of the source
# is written; a partial-area map that marks too many areas becomes
# multi-level; the recorded form comes back after re-assembly, and a copy
# whose source is deleted keeps none.
source "$STRIA_LIB/common.sh"

MiB=1048576

vol0=$(fresh_array)
arr=${vol0#/dev/stria}

# A field of `copy show --json`.
show() { stria copy show --json "$1" | json_flat | awk -F '\t' -v k="$2" '$1 == k { print $2 }'; }
# Extents of `copy diff --json A B [--maps]` as "OFFSET+LENGTH" words,
# then the method.
extents() { stria copy diff --json "$@" | json_flat | awk -F '\t' '
	$1 ~ /^extents\.[0-9]+\.offset$/ { o = $2 }
	$1 ~ /^extents\.[0-9]+\.length$/ { printf "%s%.0f+%.0f", sep, o, $2; sep = " " }
	$1 == "method" { m = $2 }
	END { print " by " m }'; }
w() { # DEV OFFSET BYTES
	dd if=/dev/urandom of="$1" bs=4k seek=$(($2 / 4096)) count=$(($3 / 4096)) \
		oflag=direct conv=notrunc status=none || die "writing $1 failed"
}
# Diff of SRC and COPY from the divergence map must be WANT and the same
# as comparing the maps whole.
same() { # SRC COPY WANT WHAT
	local by_track by_maps
	by_track=$(extents "$1" "$2")
	by_maps=$(extents "$1" "$2" --maps)
	[ "$by_track" = "$3 by divergence-map" ] ||
		die "$4: diff is '$by_track', not '$3 by divergence-map'"
	[ "$by_maps" = "$3 by maps" ] || die "$4: comparing the maps gives '$by_maps'"
	echo "ok: $4: $3"
}

step "the driver picks by size and by what the source holds"
small=$(stria volume create "stria$arr" small --size 256M)
big=$(stria volume create "stria$arr" big --size 4G)
w "$small" 0 $((8 * MiB))
w "$big" 0 $((8 * MiB))
s1=$(stria copy create "$small" small-c)
b1=$(stria copy create "$big" big-c)
[ "$(show "$s1" divergence)" = full-bitmap ] || die "256 MiB copy: $(show "$s1" divergence)"
[ "$(show "$b1" divergence)" = partial-area-bitmaps ] || die "sparse 4 GiB copy: $(show "$b1" divergence)"
# 256 MiB: 8 KiB of bits and a pointer per 128 MiB, for each side.
[ "$(show "$s1" divergence_bytes)" = $((2 * (8192 + 16))) ] || die "bit map of $(show "$s1" divergence_bytes) bytes"
echo "ok: 256 MiB -> full bit map, 4 GiB written in 4 areas -> partial-area"
# A source written in more than 62 areas of 2 MiB: multi-level.
w "$big" $((512 * MiB)) $((160 * MiB))
b2=$(stria copy create "$big" big-d)
[ "$(show "$b2" divergence)" = multi-level-bitmaps ] || die "dense 4 GiB copy: $(show "$b2" divergence)"
echo "ok: 4 GiB written in 84 areas -> multi-level"

step "each form, writes and trims on both sides"
bm=$(stria copy create --track bitmap "$big" f-bitmap)
ml=$(stria copy create --track multi "$big" f-multi)
pa=$(stria copy create --track partial "$big" f-partial)
no=$(stria copy create --track none "$big" f-none)
for c in "$bm" "$ml" "$pa"; do
	[ "$(show "$c" divergence_blocks)" = 0 ] || die "$c: fresh copy has marks"
	same "$big" "$c" "" "fresh copy, $(show "$c" divergence)"
done
[ "$(extents "$big" "$no")" = " by maps" ] || die "fresh copy without a map: $(extents "$big" "$no")"
w "$big" $((100 * MiB)) $((1 * MiB))
w "$big" $((3000 * MiB)) 4096
for c in "$bm" "$ml" "$pa"; do
	w "$c" $((7 * MiB)) $((8 * 4096))
	blkdiscard -o $((520 * MiB)) -l $((2 * MiB)) "$c" || die "discard failed"
done
want="$((7 * MiB))+32768 $((100 * MiB))+$((1 * MiB)) $((520 * MiB))+$((2 * MiB)) $((3000 * MiB))+4096"
for c in "$bm" "$ml" "$pa"; do
	same "$big" "$c" "$want" "$(show "$c" divergence)"
	marked=$(show "$c" divergence_blocks)
	# Both sides' writes and trims: 8 + 256 + 512 + 1 blocks.
	[ "$marked" = 777 ] || die "$c: $marked blocks marked, not 777"
done
w "$no" $((7 * MiB)) $((8 * 4096))
[ "$(extents "$big" "$no")" = "$((7 * MiB))+32768 $((100 * MiB))+$((1 * MiB)) $((3000 * MiB))+4096 by maps" ] ||
	die "no divergence map: $(extents "$big" "$no")"
[ "$(show "$no" divergence)" = none ] || die "--track none: $(show "$no" divergence)"
echo "ok: without a divergence map the maps are compared"
for c in "$bm" "$ml" "$pa"; do
	printf '%s: %s, %s bytes\n' "$c" "$(show "$c" divergence)" "$(show "$c" divergence_bytes)"
done

step "a partial-area map that marks many areas becomes multi-level"
for i in $(seq 0 69); do
	w "$pa" $(((1024 + i * 4) * MiB)) 4096
done
[ "$(show "$pa" divergence)" = multi-level-bitmaps ] || die "after 74 areas: $(show "$pa" divergence)"
more=""
for i in $(seq 0 69); do more="$more $(((1024 + i * 4) * MiB))+4096"; done
want_pa="$((7 * MiB))+32768 $((100 * MiB))+$((1 * MiB)) $((520 * MiB))+$((2 * MiB))$more $((3000 * MiB))+4096"
same "$big" "$pa" "$want_pa" "partial-area turned multi-level"

step "marks are where to look, not the answer"
before=$(show "$ml" divergence_blocks)
# Written and trimmed again where the source holds nothing: marked, but
# the maps agree.
w "$ml" $((2500 * MiB)) $((1 * MiB))
blkdiscard -o $((2500 * MiB)) -l $((1 * MiB)) "$ml" || die "discard failed"
after=$(show "$ml" divergence_blocks)
[ "$after" = $((before + 256)) ] || die "write and trim marked $((after - before)) blocks"
same "$big" "$ml" "$want" "after writing and trimming 1 MiB"
# A trim where neither side holds anything changes nothing, marks nothing.
blkdiscard -o $((3072 * MiB)) -l $((1024 * MiB)) "$ml" || die "discard failed"
[ "$(show "$ml" divergence_blocks)" = "$after" ] || die "trimming an empty GiB marked blocks"
echo "ok: trimming an empty GiB marks nothing"
w "$big" $((2100 * MiB)) 4096
want_ml="${want% *} $((2100 * MiB))+4096 $((3000 * MiB))+4096"
same "$big" "$ml" "$want_ml" "a write of the source after them"
# The other copies see the source's write too.
want_bm=$want_ml
want_pa="${want_pa% *} $((2100 * MiB))+4096 $((3000 * MiB))+4096"

step "after collection and re-assembly"
stria gc "$arr" --until-free 100 >/dev/null
same "$big" "$bm" "$want_bm" "bit map after collection"
stria stop "$arr"
assemble_shuffled >/dev/null
[ "$(show "$bm" divergence)" = full-bitmap ] || die "re-assembled bit map: $(show "$bm" divergence)"
[ "$(show "$ml" divergence)" = multi-level-bitmaps ] || die "re-assembled multi: $(show "$ml" divergence)"
[ "$(show "$pa" divergence)" = multi-level-bitmaps ] || die "re-assembled partial: $(show "$pa" divergence)"
[ "$(show "$s1" divergence)" = full-bitmap ] || die "re-assembled small copy: $(show "$s1" divergence)"
same "$big" "$bm" "$want_bm" "bit map after re-assembly"
same "$big" "$ml" "$want_ml" "multi-level after re-assembly"
same "$big" "$pa" "$want_pa" "partial-area after re-assembly"
# Re-assembly marks exactly where the maps differ.
[ "$(show "$bm" divergence_blocks)" = 778 ] || die "re-assembled marks: $(show "$bm" divergence_blocks)"
w "$bm" $((9 * MiB)) 4096
same "$big" "$bm" "$((7 * MiB))+32768 $((9 * MiB))+4096 ${want_bm#* }" "a write after re-assembly"

step "deleting either side"
stria copy delete "$ml"
stria volume delete stria$arr/small
[ "$(show "$s1" divergence)" = none ] || die "copy of a deleted source: $(show "$s1" divergence)"
[ "$(show "$bm" divergence)" = full-bitmap ] || die "a sibling's deletion changed $bm"
echo "ok: a copy whose source is gone keeps no divergence map"
# The deleted source's name is free again; its copy is not the new one's.
small2=$(stria volume create "stria$arr" small --size 64M)
w "$small2" 0 4096
[ "$(stria copy show --json "$s1" | json_flat | awk -F '\t' '$1 == "source" { print $2 }')" != small ] ||
	die "the copy names the new volume as its source"
echo "ok: a new volume takes the deleted source's name"

step "copies taken together read one record of the source's changes"
tog=$(stria volume create "stria$arr" together --size 256M)
w "$tog" 0 $((4 * MiB))
t1=$(stria copy create "$tog" tog-1)
t2=$(stria copy create "$tog" tog-2)
t3=$(stria copy create "$tog" tog-3)
w "$tog" $((8 * MiB)) 4096
w "$t1" $((16 * MiB)) 8192
same "$tog" "$t1" "$((8 * MiB))+4096 $((16 * MiB))+8192" "the first of three copies"
for c in "$t2" "$t3"; do
	same "$tog" "$c" "$((8 * MiB))+4096" "a copy taken with it"
	[ "$(show "$c" divergence_blocks)" = 1 ] || die "$c: $(show "$c" divergence_blocks) blocks marked, not 1"
done
[ "$(show "$t1" divergence_blocks)" = 3 ] || die "$t1: $(show "$t1" divergence_blocks) blocks marked, not 3"
stria copy delete "$t1"
w "$tog" $((9 * MiB)) 4096
same "$tog" "$t2" "$((8 * MiB))+4096 $((9 * MiB))+4096" "after the first was deleted"
# Taken after the source changed: a record of its own.
t4=$(stria copy create "$tog" tog-4)
[ "$(show "$t4" divergence_blocks)" = 0 ] || die "a later copy starts with marks"
w "$tog" $((10 * MiB)) 4096
same "$tog" "$t4" "$((10 * MiB))+4096" "a copy taken later"
same "$tog" "$t3" "$((8 * MiB))+4096 $((9 * MiB))+4096 $((10 * MiB))+4096" "an earlier copy"
stria stop "$arr"
assemble_shuffled >/dev/null
same "$tog" "$t3" "$((8 * MiB))+4096 $((9 * MiB))+4096 $((10 * MiB))+4096" "an earlier copy after re-assembly"
same "$tog" "$t4" "$((10 * MiB))+4096" "a later copy after re-assembly"
w "$tog" $((11 * MiB)) 4096
same "$tog" "$t2" "$((8 * MiB))+4096 $((9 * MiB))+4096 $((10 * MiB))+4096 $((11 * MiB))+4096" "a write after re-assembly"

step "bad requests"
huge=$(stria volume create "stria$arr" huge --size 100G)
expect_errno EINVAL stria copy create --track bitmap "$huge" huge-c
[ -z "$(stria copy list --json "$arr" | json_flat | grep -w huge-c)" ] || die "a refused copy is listed"
stria stop "$arr"
echo "copy-track: OK"

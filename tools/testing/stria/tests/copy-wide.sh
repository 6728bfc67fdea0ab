#!/bin/bash
# A copy tree wider than a stripe header's `also` table: an origin with a
# chain of sixteen copies of copies and eight more copies of itself, so
# that most blocks are shared by 24 volumes or more; every copy writes a
# little of its own.  The origin is then overwritten several times what
# the pool holds, so that collection moves blocks shared by more volumes
# than the table names: they go out once, with list entries naming the
# rest (seen in `stria dump`), and the array records the incompat feature.
# Every volume keeps its content through collection, re-assembly and
# deletes in mixed order; the volume table's limit is the tree's limit;
# once all are deleted nothing is live.
source "$STRIA_LIB/common.sh"
source "$STRIA_LIB/copy-tree.sh"

tree_array 20

step "the origin written whole and half again; a chain of 16 copies and 8 copies of the origin"
tree_fill "$vol"
# Half of it again before any copy: the filled stripes keep dead blocks,
# so collection takes them once the origin moves on, and what it moves
# from them is shared by the whole tree.
tree_randwrite "$vol" 50 $((region / 2))
prev=$vol
for i in $(seq 1 24); do
	form=full
	((i % 2)) && form=changed
	src=$prev
	((i > 16)) && src=$vol
	dev[$i]=$(stria copy create --form $form "$src" "w$i") || die "copy $i failed"
	tree_randwrite "${dev[$i]}" "$i" $((region / 64))
	((i <= 16)) && prev=${dev[$i]}
done
for i in "${!dev[@]}"; do want[$i]=$(tree_sum "${dev[$i]}"); done
n=$(stria copy list --json "$arr" | json_flat | awk -F '\t' '$1 ~ /^[0-9]+\.name$/' | wc -l)
echo "$n copies listed"
[ "$n" = 24 ] || die "24 copies made, $n listed"

step "overwrite the origin three times what the pool holds"
tree_overwrite_origin

step "stop: moved pieces name more volumes than the table holds"
stria stop "$arr"
incompat=$(stria examine --json "${devs[0]}" | json_flat | awk -F '\t' '$1 ~ /incompat$/ { v = $2 } END { print v }')
echo "incompat features: $incompat"
(((incompat & 2) != 0)) || die "the volume-list feature is not recorded"
wide=0
for d in "${devs[@]}"; do
	w=$(stria dump --json --limit 100000 "$d" 2>/dev/null | json_flat |
		awk -F '\t' '$1 ~ /\.pieces\.[0-9]+\.also\.12$/' | wc -l)
	wide=$((wide + w))
done
echo "$wide pieces stand for 14 volumes or more"
((wide > 0)) || die "no piece names more volumes than the table holds"
assemble_shuffled "${devs[@]}" >/dev/null
tree_check "after re-assembly"

step "the volume table is the limit of the tree"
have=$(stria volume list --json "$arr" | json_flat | awk -F '\t' '$1 ~ /^[0-9]+\.id$/' | wc -l)
extra=()
for i in $(seq $((have + 1)) 64); do
	d=$(stria copy create "${dev[16]}" "x$i") || die "copy x$i failed"
	extra+=("$d")
done
echo "$((have + ${#extra[@]})) volumes in one copy tree"
expect_errno ENOSPC stria copy create "${dev[16]}" one-too-many
for d in "${extra[@]}"; do stria volume delete "$d"; done

step "deletes in mixed order, collecting in between"
# The origin (0) goes while copies of it live; `make check-full` deletes
# four more in between.
if full; then
	tree_delete_collecting 8 0 24 1 13 20 5
else
	tree_delete_collecting 8 0 24
fi
tree_reassemble "after re-assembly with sources deleted"
tree_delete_all
stria stop "$arr"
remove_slices
echo "copy-wide: OK"

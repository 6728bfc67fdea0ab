#!/bin/bash
# Copies of copies under free-space collection: on a small pool, a chain
# of eight copies, each made of the one before after that one wrote its
# own share of blocks, the metadata forms alternating along the chain;
# then the origin is overwritten several times what the pool holds, so
# that collection has to move blocks the copies share. Every copy keeps
# its content (checksums), through collection, stop and re-assembly, and
# deletes in mixed order (a source with copies alive among them); once all
# are deleted nothing is live any more.
source "$STRIA_LIB/common.sh"
source "$STRIA_LIB/copy-tree.sh"

tree_array 30

step "the origin written whole, then a chain of eight copies"
tree_fill "$vol"
prev=$vol
for i in 1 2 3 4 5 6 7 8; do
	form=full
	((i % 2)) && form=changed
	dev[$i]=$(stria copy create --form $form "$prev" "lvl$i") || die "copy $i failed"
	tree_randwrite "${dev[$i]}" "$i" $((region / 8))
	prev=${dev[$i]}
done
for i in "${!dev[@]}"; do want[$i]=$(tree_sum "${dev[$i]}"); done
stria copy list

step "overwrite the origin three times what the pool holds"
tree_overwrite_origin
stria status "$vol"

step "stop and re-assemble"
tree_reassemble "after re-assembly"

step "deletes in mixed order, collecting in between"
tree_delete_collecting 4 0 8 1 6
tree_reassemble "after re-assembly with sources deleted"
tree_randwrite "${dev[7]}" 107 $((region / 4))
want[7]=$(tree_sum "${dev[7]}")
tree_check "after writing to a copy of deleted sources"
tree_delete_all
stria status "$arr"
stria stop "$arr"
remove_slices
echo "copy-gc: OK"

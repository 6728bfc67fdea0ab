#!/bin/bash
# Instant copies: `stria copy create` makes a copy that holds exactly what
# its source held at the call, while the source is overwritten at random
# (fio, crc32c-verified) and the copy is read the whole time; writes to
# the copy then leave the source alone, in both metadata forms (changed
# blocks only, full pointer table) and in a copy tree mixing them; a few
# scattered writes to a changed-blocks copy stay in deltas, not whole map
# pages; a discard longer than one trim piece leaves a copy whole.  Copies of copies; a source shrunk
# and grown back after its copy was made reads zeros past the shrink while
# the copy keeps everything.  The copies and their contents survive stop
# and re-assembly; bad requests (unknown source, duplicate or
# bad name, a size given) fail with their errno and change nothing.
source "$STRIA_LIB/common.sh"

MiB=1048576
region=$((64 * MiB))

jfield() { json_flat | awk -F '\t' -v k="$1" '$1 == k { print $2 }'; }

# Region of DEV against file FILE.
same() { # DEV FILE WHAT
	cmp -s -n "$region" "$1" "$2" || die "$3: $1 does not hold $2"
}

fio_write() { # DEV SEED
	fio --filename="$1" --direct=1 --ioengine=io_uring --iodepth=8 --name=w \
		--rw=randwrite --bs=4k --size="$region" --io_size=$((region * 2)) \
		--randseed="$2" --verify=crc32c --do_verify=0 --output=/tmp/w.out \
		--eta=never || { cat /tmp/w.out; die "fio writing $1 failed"; }
}

fio_verify() { # DEV SEED WHAT
	fio --filename="$1" --direct=1 --ioengine=io_uring --iodepth=8 --name=w \
		--rw=randwrite --bs=4k --size="$region" --io_size=$((region * 2)) \
		--randseed="$2" --verify=crc32c --verify_only --output=/tmp/v.out \
		--eta=never || { cat /tmp/v.out; die "$3: $1 does not verify"; }
}

vol0=$(fresh_array)
arr=${vol0#/dev/stria}

step "fill the source with a known pattern"
head -c "$region" /dev/urandom >/tmp/A
dd if=/tmp/A of="$vol0" bs=1M oflag=direct conv=fsync status=none

step "copy it"
json=$(stria copy create --json --form changed "$vol0" snap1)
echo "$json"
c1=$(jfield device <<<"$json")
[ "$(jfield form <<<"$json")" = changed-blocks ] || die "copy create: form not recorded"
[ -b "$c1" ] || die "copy device $c1 missing"
echo "copy made in $(jfield micros <<<"$json") us"
same "$c1" /tmp/A "right after the copy"
[ "$(blockdev --getsize64 "$c1")" = "$(blockdev --getsize64 "$vol0")" ] ||
	die "the copy's size differs from the source's"

step "overwrite the source at random while reading the copy"
fio_write "$vol0" 11 &
writer=$!
reads=0
while kill -0 "$writer" 2>/dev/null; do
	same "$c1" /tmp/A "while the source is overwritten"
	reads=$((reads + 1))
done
wait "$writer" || die "overwriting the source failed"
echo "read the copy whole $reads times meanwhile"
((reads > 0)) || die "the copy was never read during the overwrite"
fio_verify "$vol0" 11 "source after the overwrite"
same "$c1" /tmp/A "after the overwrite"

step "write to the copy: the source stays as it was"
fio_write "$c1" 22 &
writer=$!
while kill -0 "$writer" 2>/dev/null; do
	fio_verify "$vol0" 11 "source while the copy is written"
done
wait "$writer" || die "writing the copy failed"
fio_verify "$c1" 22 "copy after its own writes"
fio_verify "$vol0" 11 "source after the copy's writes"

step "a copy of the copy, then a copy of the source"
c2=$(stria copy create --form full "$c1" snap2)
c3=$(stria copy create "stria$arr/vol0" snap3)
fio_verify "$c2" 22 "copy of the copy"
fio_verify "$c3" 11 "second copy of the source"
stria copy list
stria copy show --json "$c2" | tee /tmp/show
[ "$(jfield form </tmp/show)" = full-pointer-table ] || die "copy show: wrong form"
[ "$(jfield source </tmp/show)" = snap1 ] || die "copy show: wrong source"
shared=$(jfield shared_blocks </tmp/show)
((shared > 0)) || die "a fresh copy shares nothing with its source"

step "a few scattered writes to a changed-blocks copy stay in deltas"
c4=$(stria copy create --form changed "$c3" snap4)
head -c "$region" "$c3" >/tmp/D
for b in 5 700 3000 9000 16000; do
	head -c 4096 /dev/urandom >/tmp/blk
	dd if=/tmp/blk of="$c4" bs=4k seek=$b oflag=direct conv=fsync status=none
	dd if=/tmp/blk of=/tmp/D bs=4k seek=$b conv=notrunc status=none
done
same "$c4" /tmp/D "changed-blocks copy after its writes"
fio_verify "$c3" 11 "source of the changed-blocks copy"
stria copy show --json "$c4" | tee /tmp/show
[ "$(jfield form </tmp/show)" = changed-blocks ] || die "snap4: wrong form"
deltas=$(jfield deltas </tmp/show)
[ "$deltas" = 5 ] || die "snap4: $deltas deltas for 5 blocks in 5 map pages"
unique=$(jfield unique_blocks </tmp/show)
[ "$unique" -le 5 ] || die "snap4: $unique unique blocks for 5 written"

step "a discard longer than one trim piece over blocks a copy shares"
big=$(stria volume create "stria$arr" big --size 264M)
dd if=/dev/urandom of="$big" bs=1M count=264 oflag=direct conv=fsync status=none
big_sum=$(md5sum <"$big" | cut -d' ' -f1)
bigc=$(stria copy create --form changed "$big" bigsnap)
blkdiscard "$big" || die "discarding $big failed"
big_ok() { # WHAT
	cmp -s -n $((264 * MiB)) "$big" /dev/zero || die "$1: the discarded source does not read zeros"
	[ "$(md5sum <"$bigc" | cut -d' ' -f1)" = "$big_sum" ] || die "$1: the copy changed with its source's discard"
}
big_ok "after the discard"

step "shrink a source below what its copy holds, grow it back"
size1=$(blockdev --getsize64 "$c1")
stria volume resize "$c1" --size 32M
stria volume resize "$c1" --size "$size1"
# snap1: its lower half as snap2 holds it, zeros above.
c1_ok() { # WHAT
	cmp -s -n $((region / 2)) "$c1" "$c2" || die "$1: snap1's lower half changed"
	cmp -s -n $((region / 2)) -i $((region / 2)):0 "$c1" /dev/zero ||
		die "$1: snap1 does not read zeros past its shrink"
}
c1_ok "after the shrink"
fio_verify "$c2" 22 "copy of a source that shrank"

step "bad requests fail and change nothing"
before=$(stria copy list --json | json_flat | grep -c '\.id	')
expect_errno ENOENT stria copy create "stria$arr/nosuch" x1
expect_errno EEXIST stria copy create "$vol0" snap1
expect_errno EINVAL stria copy create "$vol0" 'bad name'
expect_errno EINVAL stria copy create "$vol0" "$(printf 'n%.0s' {1..40})"
expect_errno EINVAL stria copy delete "$vol0"
after=$(stria copy list --json | json_flat | grep -c '\.id	')
[ "$before" = "$after" ] || die "a failed request changed the copies ($before -> $after)"

step "stop and re-assemble: every volume as it was"
stria stop "$vol0"
vol0=$(assemble_shuffled)
fio_verify "$vol0" 11 "source after re-assembly"
c1_ok "after re-assembly"
fio_verify "$c2" 22 "copy of the copy after re-assembly"
fio_verify "$c3" 11 "second copy after re-assembly"
same "/dev/stria${arr}v5" /tmp/D "changed-blocks copy after re-assembly"
big=/dev/stria${arr}v6
bigc=/dev/stria${arr}v7
big_ok "after re-assembly"
live=$(status_field "$vol0" live_bytes)
mapped=$(stria volume list --json "$vol0" | json_flat | awk -F '\t' '$1 ~ /mapped_blocks$/ { s += $2 } END { print s }')
echo "live $live bytes; mapped blocks of all volumes $mapped"

step "delete the source with copies alive: they stay"
stria volume delete "$vol0"
c1_ok "after its source went"
fio_verify "$c3" 11 "second copy after its source went"
stria copy show "$c1"
stria stop "$arr"
c1=$(assemble_shuffled)
c1_ok "after its source went and re-assembly"
fio_verify "/dev/stria${arr}v4" 11 "second copy after its source went and re-assembly"
stria copy list

step "delete every copy: their space comes back"
same "/dev/stria${arr}v5" /tmp/D "changed-blocks copy of a deleted copy's source"
stria copy delete "/dev/stria${arr}v4"
same "/dev/stria${arr}v5" /tmp/D "changed-blocks copy of a deleted copy"
stria copy delete "/dev/stria${arr}v5"
stria copy delete "/dev/stria${arr}v2"
fio_verify "/dev/stria${arr}v3" 22 "copy of a deleted copy"
stria copy delete "/dev/stria${arr}v3"
stria volume delete "/dev/stria${arr}v6"
[ "$(md5sum <"/dev/stria${arr}v7" | cut -d' ' -f1)" = "$big_sum" ] ||
	die "the copy changed with its source's delete"
stria copy delete "/dev/stria${arr}v7"
any=/dev/stria$arr
live=$(stria status --json "$arr" | json_flat | awk -F '\t' '$1 ~ /live_bytes$/ { print $2 }')
echo "live after deleting everything: $live bytes"
[ "$live" = 0 ] || die "$live bytes still live with no volume left"
[ -z "$(stria volume list --json "$arr" | json_flat)" ] || die "volumes left after deleting all"
stria stop "$arr"
echo "copies: OK"

#!/bin/bash
# stria create / examine / dump on real block devices: both superblock
# copies written, every member agrees, signatures refused unless --force
# and wiped with it (a GPT with its backup header, md superblocks), claimed
# devices refused.
source "$STRIA_LIB/common.sh"

step "create on ${MEMBERS[*]}"
stria create --raid 6 --strip 128 --name vmtest "${MEMBERS[@]}"
uuid=""
for i in "${!MEMBERS[@]}"; do
	json=$(stria examine --json "${MEMBERS[$i]}")
	u=$(sed -n 's/.*"array_uuid": "\([^"]*\)".*/\1/p' <<<"$json")
	[ -n "$u" ] || die "no array uuid on ${MEMBERS[$i]}"
	[ -z "$uuid" ] || [ "$u" = "$uuid" ] || die "members disagree on the array"
	uuid=$u
	grep -q "\"member_index\": $i," <<<"$json" || die "wrong member index on ${MEMBERS[$i]}"
	grep -q '"primary": "valid' <<<"$json" || die "primary copy not valid"
	grep -q '"backup": "valid' <<<"$json" || die "backup copy not valid"
done
stria examine "${MEMBERS[0]}"
echo "ok: all members belong to $uuid"

step "dump finds no stripes on a fresh array"
out=$(stria dump "${MEMBERS[0]}" 2>/dev/null)
echo "$out"
grep -q " 0 stripe headers" <<<"$out" || die "dump found headers on a fresh array"

step "the created array assembles, members in any order"
vol=$(assemble "${MEMBERS[2]}" "${MEMBERS[0]}" "${MEMBERS[3]}" "${MEMBERS[1]}")
# The volume is as large as create recorded in the volume table.
blocks=$(stria examine "${MEMBERS[0]}" | sed -n 's/.*volume 1: vol0 \([0-9]*\) blocks.*/\1/p')
[ -n "$blocks" ] || die "examine shows no volume 1"
want=$((blocks * 4096))
size=$(blockdev --getsize64 "$vol")
[ "$size" = "$want" ] || die "volume has $size bytes, expected $want"
stria stop "$vol"
echo "ok: $size bytes"

step "assembly records itself: generation 2 in both copies of every member"
for m in "${MEMBERS[@]}"; do
	json=$(stria examine --json "$m")
	grep -q '"generation": 2,' <<<"$json" || die "$m: generation is not 2 after one assembly"
	grep -q '"primary": "valid, generation 2"' <<<"$json" || die "$m: primary copy not updated"
	grep -q '"backup": "valid, generation 2"' <<<"$json" || die "$m: backup copy not updated"
done
echo "ok"

step "signatures are refused"
expect_create_refused() {
	if out=$(stria create "$@" 2>&1); then die "create $* succeeded"; fi
	echo "ok: refused: $out"
}
expect_create_refused "${MEMBERS[@]}"
mkfs.ext4 -q -F "${MEMBERS[3]}" 2>/dev/null
stria create --force "${MEMBERS[@]}" >/dev/null
mkfs.ext4 -q -F "${MEMBERS[3]}"
out=$(stria create "${MEMBERS[3]}" "${MEMBERS[2]}" 2>&1) && die "create over ext4 succeeded"
case "$out" in *"${MEMBERS[3]}: found "*ext4*"; use --force"*) echo "ok: $out" ;; *) die "unexpected: $out" ;; esac

step "a claimed device is refused"
mkdir -p /mnt/m
mount "${MEMBERS[3]}" /mnt/m
expect_errno EBUSY stria create --force "${MEMBERS[2]}" "${MEMBERS[3]}"
umount /mnt/m
echo ok

# Nothing libblkid knows is left on $1, by wipefs's and blkid's account.
expect_wiped() {
	local left
	left=$(wipefs --noheadings --output TYPE "$1")
	[ -z "$left" ] || die "$1: left after --force: $left"
	if blkid -p "$1" >/dev/null; then die "$1: blkid still recognises $(blkid -p "$1")"; fi
}

# The 8 bytes at byte offset $2 of $1, NULs dropped.
bytes_at() {
	dd if="$1" bs=1 skip="$2" count=8 2>/dev/null | tr -d '\0'
}

step "a GPT is refused, and --force wipes both headers and drops the partitions"
gpt=${MEMBERS[3]}
part=/sys/block/${gpt##*/}/${gpt##*/}1
printf 'label: gpt\n,64M\n,\n' | sfdisk --quiet "$gpt"
[ -e "$part" ] || die "the kernel does not list ${gpt}1 after sfdisk"
last=$(($(blockdev --getsize64 "$gpt") - 512))
[ "$(bytes_at "$gpt" "$last")" = "EFI PART" ] || die "sfdisk wrote no backup GPT header"
out=$(stria create "$gpt" "${MEMBERS[2]}" 2>&1) && die "create over a GPT succeeded"
case "$out" in
# (What earlier steps left, a stria backup copy, may be named too.)
*"$gpt: found "*"gpt partition table; use --force to overwrite it") echo "ok: $out" ;;
*) die "unexpected: $out" ;;
esac
stria create --force "$gpt" "${MEMBERS[2]}" >/dev/null
expect_wiped "$gpt"
[ "$(bytes_at "$gpt" 512)" != "EFI PART" ] || die "primary GPT header left"
[ "$(bytes_at "$gpt" "$last")" != "EFI PART" ] || die "backup GPT header left"
[ ! -e "$part" ] || die "the kernel still lists ${gpt}1"
stria examine "$gpt" >/dev/null || die "no stria member after create --force"
echo "ok: both headers gone, partitions dropped"

step "md members are refused, and --force wipes their superblocks"
# No udev in the guest to load the personality on demand.
modprobe raid1
# 1.2 sits at 4 KiB, 0.90 near the end, where stria writes nothing.
for meta in 1.2 0.90; do
	out=$(mdadm --create /dev/md0 --run --force --assume-clean --level=1 \
		--raid-devices=2 --metadata="$meta" "${MEMBERS[0]}" "${MEMBERS[1]}" 2>&1) ||
		die "mdadm --create --metadata=$meta: $out"
	mdadm --stop /dev/md0 >/dev/null 2>&1 || die "mdadm --stop /dev/md0 failed"
	out=$(stria create "${MEMBERS[0]}" "${MEMBERS[1]}" 2>&1) && die "create over md $meta succeeded"
	case "$out" in
	*"${MEMBERS[0]}: found "*linux_raid_member"; use --force to overwrite it") echo "ok: $meta: $out" ;;
	*) die "md $meta: unexpected: $out" ;;
	esac
	stria create --force "${MEMBERS[0]}" "${MEMBERS[1]}" >/dev/null
	for m in "${MEMBERS[0]}" "${MEMBERS[1]}"; do
		expect_wiped "$m"
		if mdadm --examine "$m" >/dev/null 2>&1; then die "$m: md $meta superblock left"; fi
	done
	echo "ok: md $meta wiped"
done

#!/bin/bash
# Volumes of one array: `stria volume` creates thin volumes beside vol0,
# each keeping its own data; lists them; grows and shrinks them (a shrink
# drops the blocks beyond the new end, so growing back reads zeros there);
# deletes them unless open, never handing a deleted volume's data to a new
# one; refuses duplicate and bad names, sizes that are not whole 4 KiB
# blocks and missing volumes; and the volume table, the sizes and the data
# survive stop and re-assembly.
source "$STRIA_LIB/common.sh"

MiB=1048576

# The value of KEY in the JSON object on stdin.
jfield() { json_flat | awk -F '\t' -v k="$1" '$1 == k { print $2 }'; }

# "NAME SIZE DEVICE OPEN MAPPED" for every volume of array ARRAY (of every
# array if none is given), sorted by name.
volume_table() { # [ARRAY]
	stria volume list --json ${1:+"$1"} | json_flat | awk -F '\t' '
	{ split($1, p, "."); f[p[1], p[2]] = $2; if (p[1] + 1 > n) n = p[1] + 1 }
	END {
		for (i = 0; i < n; i++)
			print f[i, "name"], f[i, "size_bytes"], f[i, "device"],
				f[i, "open_count"], f[i, "mapped_blocks"]
	}' | sort
}

expect_size() { # DEV BYTES
	local got
	got=$(blockdev --getsize64 "$1")
	[ "$got" = "$2" ] || die "$1 has $got bytes, expected $2"
}

# 1 MiB patterns, one per place written, and zeros.
for p in p0 pa pa2 pb pb2 pg; do head -c $MiB /dev/urandom >"/tmp/$p"; done
head -c $MiB /dev/zero >/tmp/zero

put() { # DEV MIB PATTERN
	dd if="/tmp/$3" of="$1" bs=1M seek="$2" oflag=direct conv=fsync status=none ||
		die "writing $3 to $1 at $2 MiB failed"
}

check() { # DEV MIB PATTERN WHAT
	dd if="$1" of=/tmp/rd bs=1M skip="$2" count=1 iflag=direct status=none ||
		die "$4: reading $1 at $2 MiB failed"
	cmp -s /tmp/rd "/tmp/$3" || die "$4: $1 at $2 MiB does not hold $3"
}

vol0=$(fresh_array)
arr=${vol0#/dev/stria}
size0=$(blockdev --getsize64 "$vol0")

step "create two thin volumes beside vol0"
a=$(stria volume create "$vol0" alpha --size 256M)
json=$(stria volume create --json "stria$arr" beta --size 1G)
echo "$a"
echo "$json"
b=$(jfield device <<<"$json")
id_b=$(jfield id <<<"$json")
[ "$(jfield name <<<"$json")" = beta ] || die "create --json: wrong name"
[ "$(jfield size_bytes <<<"$json")" = $((1024 * MiB)) ] || die "create --json: wrong size"
[ "$b" = "/dev/stria${arr}v$id_b" ] || die "beta (id $id_b) is $b"
[[ $a == /dev/stria${arr}v* ]] || die "alpha is $a"
id_a=${a##*v}
[ "$a" != "$b" ] || die "alpha and beta share $a"
for d in "$a" "$b"; do [ -b "$d" ] || die "$d is not a block device"; done
expect_size "$vol0" "$size0"
expect_size "$a" $((256 * MiB))
expect_size "$b" $((1024 * MiB))
for m in "${MEMBERS[@]}"; do
	t=$(stria examine "$m")
	grep -q "volume $id_a: alpha 65536 blocks" <<<"$t" || die "$m: no alpha in the volume table"
	grep -q "volume $id_b: beta 262144 blocks" <<<"$t" || die "$m: no beta in the volume table"
done
echo "ok: $a and $b, in every member's volume table"

step "each volume keeps its own data"
put "$vol0" 0 p0
put "$a" 0 pa
put "$a" 192 pa2
put "$b" 0 pb
check "$vol0" 0 p0 "vol0"
check "$a" 0 pa "alpha"
check "$a" 192 pa2 "alpha"
check "$b" 0 pb "beta"
echo ok

step "volume list"
stria volume list
want=$(printf '%s\n' "vol0 $size0 $vol0 0 256" "alpha $((256 * MiB)) $a 0 512" \
	"beta $((1024 * MiB)) $b 0 256" | sort)
got=$(volume_table "$arr")
[ "$got" = "$want" ] || die "volume list --json $arr:"$'\n'"$got"$'\n'"expected:"$'\n'"$want"
[ "$(volume_table)" = "$want" ] || die "volume list --json of every array differs"
echo ok

step "grow beta to 2 GiB"
stria volume resize "$b" --size 2G
expect_size "$b" $((2048 * MiB))
check "$b" 0 pb "beta after growing"
put "$b" 1536 pb2
check "$b" 1536 pb2 "beta beyond its old end"
echo ok

step "shrink alpha to 128 MiB, grow it back to 256 MiB"
stria volume resize "$arr/alpha" --size 128M
expect_size "$a" $((128 * MiB))
check "$a" 0 pa "alpha after shrinking"
stria volume resize "stria$arr/alpha" --size 256M
expect_size "$a" $((256 * MiB))
check "$a" 0 pa "alpha after growing back"
check "$a" 192 zero "alpha beyond the shrink"
echo ok

step "an open volume is not deleted, its array not stopped"
g=$(stria volume create "$arr" gamma --size 64M)
put "$g" 0 pg
exec 3<"$g"
expect_errno EBUSY stria volume delete "$g"
expect_errno EBUSY stria volume delete "$arr/gamma"
expect_errno EBUSY stria stop "$vol0"
[ -b "$g" ] || die "$g went away while open"
t=$(volume_table "$arr")
grep -qx "gamma $((64 * MiB)) $g 1 256" <<<"$t" || die "gamma is not listed as open:"$'\n'"$t"
check "$g" 0 pg "gamma while open"
exec 3<&-

step "delete a volume that is not open"
stria volume delete "$g"
[ ! -e "$g" ] || die "$g still exists after delete"
t=$(volume_table "$arr")
! grep -q '^gamma ' <<<"$t" || die "gamma still listed"
expect_errno ENOENT stria volume delete "$g"
expect_errno ENOENT stria volume delete "$arr/gamma"
echo ok

step "a new volume of a deleted one's name has a new id and none of its data"
g2=$(stria volume create "$arr" gamma --size 64M)
[ "$g2" != "$g" ] || die "the new gamma reuses $g"
check "$g2" 0 zero "new gamma"
long=$(printf '%031d' 0)
stria volume create "$arr" "$long" --size 4K >/dev/null
stria volume delete "$arr/$long"
echo "ok: $g2"

step "refusals"
expect_errno EEXIST stria volume create "$arr" alpha --size 64M
expect_errno EEXIST stria volume create "$arr" vol0 --size 64M
expect_errno EINVAL stria volume create "$arr" bad/name --size 64M
expect_errno EINVAL stria volume create "$arr" "bad name" --size 64M
expect_errno EINVAL stria volume create "$arr" "${long}0" --size 64M
expect_errno EINVAL stria volume create "$arr" delta --size 1000
expect_errno EINVAL stria volume create "$arr" delta --size 6K
expect_errno EINVAL stria volume resize "$b" --size 10K
# These two reach the kernel.
expect_errno EINVAL stria volume create "$arr" delta --size 0
expect_errno EINVAL stria volume resize "$b" --size 2048P
expect_errno ENOENT stria volume delete "/dev/stria${arr}v999"
expect_errno ENOENT stria volume resize "$arr/nosuch" --size 1G
expect_errno ENOENT stria volume delete "$arr/nosuch"
expect_errno ENOENT stria volume create 63 delta --size 64M
expect_errno ENOENT stria volume list 63
expect_size "$b" $((2048 * MiB))

step "stop and re-assemble: the volumes, sizes and data are back"
want=$(printf '%s\n' "vol0 $size0 $vol0 0 256" "alpha $((256 * MiB)) $a 0 256" \
	"beta $((2048 * MiB)) $b 0 512" "gamma $((64 * MiB)) $g2 0 0" | sort)
check_all() { # WHAT
	local got
	got=$(volume_table "$arr")
	[ "$got" = "$want" ] || die "$1: volume list:"$'\n'"$got"$'\n'"expected:"$'\n'"$want"
	expect_size "$vol0" "$size0"
	expect_size "$a" $((256 * MiB))
	expect_size "$b" $((2048 * MiB))
	expect_size "$g2" $((64 * MiB))
	[ ! -e "$g" ] || die "$1: the deleted $g is back"
	check "$vol0" 0 p0 "$1: vol0"
	check "$a" 0 pa "$1: alpha"
	check "$a" 192 zero "$1: alpha beyond the shrink"
	check "$b" 0 pb "$1: beta"
	check "$b" 1536 pb2 "$1: beta beyond its first end"
	check "$g2" 0 zero "$1: new gamma"
	echo "ok: $1"
}
check_all "before stop"
stria volume list
stria stop "$vol0"
for d in "$vol0" "$a" "$b" "$g2"; do [ ! -e "$d" ] || die "$d still exists after stop"; done
vol=$(assemble)
[ "$vol" = "$vol0" ] || die "re-assembled as $vol, expected $vol0"
stria volume list
check_all "after re-assembly"
stria stop "$vol0"
echo ok

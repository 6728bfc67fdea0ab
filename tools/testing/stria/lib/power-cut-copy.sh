#!/bin/bash
# Guest half of the power-cut-copy test, one boot per cut.  "first" makes a
# fresh array with a small "notes" volume beside vol0; "again" re-assembles
# it as the last cut left it and checks every copy there is.  Then, until
# the plug is pulled ("check" only checks): changes vol0 (fsynced), writes the checksum vol0 now
# has and the name of the next copy to the notes (fsynced), makes that
# copy, and deletes the oldest copies beyond six (noting each first).
# After a cut every copy that exists must be in the notes with exactly that
# checksum: a copy is there with its content of the moment, or not at all;
# and only the step noted last may be missing.
source "$STRIA_LIB/common.sh"

round=$2
span=$((4 * 1048576))
jfield() { json_flat | awk -F '\t' -v k="$1" '$1 == k { print $2 }'; }
sum() { head -c "$span" "$1" | md5sum | cut -d' ' -f1; }

notes_dev() {
	stria volume list --json "$1" | json_flat |
		awk -F '\t' '{ split($1, p, "."); f[p[1], p[2]] = $2 }
		END { for (k in f) { split(k, q, SUBSEP); if (q[2] == "name" && f[k] == "notes") print f[q[1], "device"] } }'
}

# The copies of the array as "NAME DEVICE" lines, oldest first.
copies() {
	stria copy list --json "$1" | json_flat |
		awk -F '\t' '{ split($1, p, "."); f[p[1], p[2]] = $2; if (p[1] + 1 > n) n = p[1] + 1 }
		END { for (i = 0; i < n; i++) print f[i, "id"], f[i, "name"], f[i, "device"] }' |
		sort -n | cut -d' ' -f2-
}

if [ "$1" = first ]; then
	vol=$(fresh_array)
	notes=$(stria volume create "$vol" notes --size 1M)
	dd if=/dev/urandom of="$vol" bs=1M count=4 oflag=direct conv=fsync status=none
	: >/tmp/notes
else
	vol=$(assemble_shuffled)
	arr=${vol#/dev/stria}
	arr=${arr%%v*}
	notes=$(notes_dev "$arr")
	[ -b "$notes" ] || die "the notes volume is gone"
	tr -d '\0' <"$notes" >/tmp/notes
	n=0
	copies "$vol" >/tmp/have
	while read -r name dev; do
		[ -n "$name" ] || continue
		want=$(awk -v n="$name" '$1 == n { print $2 }' /tmp/notes)
		[ -n "$want" ] || die "copy $name exists but was never noted"
		got=$(sum "$dev")
		[ "$got" = "$want" ] || die "copy $name holds $got, not $want as at its copy point"
		n=$((n + 1))
	done </tmp/have
	# Only the last noted step may be undone: a copy noted earlier and not
	# deleted since must be there, a deleted one gone.
	last=$(tail -n1 /tmp/notes)
	while read -r a b; do
		line="$a $b"
		[ "$line" = "$last" ] && continue
		if [ "$a" = - ]; then
			grep -q "^$b " /tmp/have && die "copy $b was deleted but is back"
		elif ! grep -q "^- $a\$" /tmp/notes; then
			grep -q "^$a " /tmp/have || die "copy $a, made before the cut, is gone"
		fi
	done </tmp/notes
	echo "$n copies checked: each as at its copy point"
	# The last step, if the cut undid it, is dropped from the notes: later
	# rounds must not take it for one made before their cut.
	read -r a b <<<"$last"
	if { [ "$a" = - ] && grep -q "^$b " /tmp/have; } ||
		{ [ "$a" != - ] && ! grep -q "^$a " /tmp/have; }; then
		sed -i '$d' /tmp/notes
		dd if=/tmp/notes of="$notes" bs=64k conv=sync,fsync oflag=direct status=none
	fi
fi
arr=${vol#/dev/stria}
arr=${arr%%v*}
if [ "$1" = check ]; then
	stria stop "$arr"
	exit 0
fi
echo "=== power cut armed ==="
k=0
while :; do
	k=$((k + 1))
	dd if=/dev/urandom of="$vol" bs=64k count=1 seek=$((RANDOM % 64)) oflag=direct conv=fsync status=none
	name=snap$round-$k
	echo "$name $(sum "$vol")" >>/tmp/notes
	dd if=/tmp/notes of="$notes" bs=64k conv=sync,fsync oflag=direct status=none
	form=full
	((k % 2)) && form=changed
	stria copy create --form $form "$vol" "$name" >/dev/null
	mapfile -t old <<<"$(copies "$arr")"
	while ((${#old[@]} > 6)); do
		echo "- ${old[0]%% *}" >>/tmp/notes
		dd if=/tmp/notes of="$notes" bs=64k conv=sync,fsync oflag=direct status=none
		stria copy delete "${old[0]#* }"
		old=("${old[@]:1}")
	done
done

# SPDX-License-Identifier: GPL-2.0
# Shared helpers for stria VM tests (sourced inside the guest by bash).

set -euo pipefail

# No udev in the guest: let libdevmapper make its own /dev/mapper nodes.
export DM_DISABLE_UDEV=1

read -r -a MEMBERS <<<"${STRIA_DISKS:-}"

# Print a step and keep going.
step() { printf '\n--- %s\n' "$*"; }

# True under `make check-full`, which runs the long variants of tests.
full() { [ -n "${STRIA_CHECK_FULL:-}" ]; }

# Fail the test with a message.
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# Run a command that must fail with the given errno name in its one-line
# error (the helper prints "... (EBUSY)").
expect_errno() {
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then
		die "'$*' succeeded, expected $want"
	fi
	case "$out" in
	*"($want)"*) printf 'ok: %s -> %s\n' "$*" "$want" ;;
	*) die "'$*' failed with '$out', expected $want" ;;
	esac
}

# Assemble the given members (default: all) and print the volume path.
assemble() {
	local vol
	vol=$(stria assemble "${@:-${MEMBERS[@]}}")
	[ -b "$vol" ] || die "assemble printed '$vol', not a block device"
	echo "$vol"
}

# Assemble the given members (default: all) in a random order, which must
# not matter, and print the volume path; the order goes to stderr.
assemble_shuffled() {
	local order
	(($#)) || set -- "${MEMBERS[@]}"
	# (No process substitution: the guest has no /dev/fd.)
	mapfile -t order <<<"$(printf '%s\n' "$@" | shuf)"
	printf 'assembling %s\n' "${order[*]}" >&2
	assemble "${order[@]}"
}

# Write fresh superblocks to the given members (default: all), then
# assemble them and print the volume path.  Options before the members
# (--raid 6, --strip 64, --name NAME, --force) go to `stria create`.
fresh_array() {
	local opts=()
	while (($#)) && [[ $1 == --* ]]; do
		case $1 in
		--force) opts+=("$1"); shift ;;
		*) opts+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
		esac
	done
	(($#)) || set -- "${MEMBERS[@]}"
	stria create "${opts[@]}" "$@" >/dev/null || die "stria create $* failed"
	assemble "$@"
}

# A numeric field of `stria status --json VOL`.
status_field() {
	local json
	json=$(stria status --json "$1")
	sed -n "s/.*\"$2\": \([0-9]*\).*/\1/p;T;q" <<<"$json"
}

# JSON on stdin as one "PATH<TAB>VALUE" line per scalar, PATH made of the
# object keys and array indices leading to it:
#   {"headers": [{"seq": 3, "prev": [1, 512]}]}  ->  headers.0.seq   3
#                                                    headers.0.prev.0 1 ...
# Strings lose their quotes; empty objects and arrays print nothing.  For
# the helper's --json output, which never breaks a token across lines.
json_flat() {
	awk '
	function value(v,   p, i) {
		p = ""
		for (i = 1; i <= d; i++)
			p = p (i > 1 ? "." : "") (t[i] == "a" ? n[i] : k[i])
		print p "\t" v
		if (d > 0 && t[d] == "a")
			n[d]++
	}
	function push(c) {
		d++
		t[d] = c == "{" ? "o" : "a"
		n[d] = 0
		k[d] = ""
		key = c == "{"
	}
	function pop() {
		d--
		if (d > 0 && t[d] == "a")
			n[d]++
		key = 0
	}
	# Fast path: a pretty-printed line, at most a key and one token.
	{
		s = $0
		sub(/^[ \t\r]+/, "", s)
		sub(/[ \t\r]+$/, "", s)
		f = s
		comma = sub(/,$/, "", f)
		kk = ""
		if (match(f, /^"[^"\\]*": /)) {
			kk = substr(f, 2, RLENGTH - 4)
			f = substr(f, RLENGTH + 1)
		}
		if ((kk == "" || (d > 0 && t[d] == "o")) &&
		    f ~ /^([][{}]|\[\]|\{\}|-?[0-9][-+.eE0-9]*|true|false|null|"[^"\\]*")$/) {
			if (kk != "")
				k[d] = kk
			if (f == "{" || f == "[") {
				push(f)
			} else if (f == "}" || f == "]") {
				pop()
			} else if (f == "{}" || f == "[]") {
				if (d > 0 && t[d] == "a")
					n[d]++
			} else {
				if (f ~ /^"/)
					f = substr(f, 2, length(f) - 2)
				value(f)
			}
			if (f != "{")
				key = comma && d > 0 && t[d] == "o"
			next
		}
	}
	# Anything else, a token at a time.
	{
		s = $0
		while (s != "") {
			c = substr(s, 1, 1)
			if (match(s, /^[ \t\r:]+/)) {
				s = substr(s, RLENGTH + 1)
			} else if (c == ",") {
				if (d > 0 && t[d] == "o")
					key = 1
				s = substr(s, 2)
			} else if (c == "{" || c == "[") {
				push(c)
				s = substr(s, 2)
			} else if (c == "}" || c == "]") {
				pop()
				s = substr(s, 2)
			} else if (c == "\"") {
				if (!match(s, /^"([^"\\]|\\.)*"/))
					exit 1
				v = substr(s, 2, RLENGTH - 2)
				s = substr(s, RLENGTH + 1)
				gsub(/\\"/, "\"", v)
				gsub(/\\\\/, "\\", v)
				if (key && d > 0 && t[d] == "o") {
					k[d] = v
					key = 0
				} else {
					value(v)
				}
			} else if (match(s, /^(-?[0-9][-+.eE0-9]*|true|false|null)/)) {
				value(substr(s, 1, RLENGTH))
				s = substr(s, RLENGTH + 1)
			} else {
				exit 1
			}
		}
	}'
}

# Decode the stripe headers on the given members of one array (in member
# index order, so that MEMBER below indexes them) with `stria dump --json`
# into tables in directory DIR, each sorted by SEQ:
#   DIR/copies   SEQ DEVICE BLOCK SPAN             a header copy
#   DIR/strips   SEQ STRIP MEMBER LBA SPAN         a strip of a stripe
#   DIR/pieces   SEQ STRIP HOST_LBA HOST_LEN LEN   a host piece (LEN 0: trim)
#   DIR/invalid  DEVICE BLOCK REASON               a damaged header block
# SPAN is the strip's length in blocks, its header block included.  The
# strip and piece tables come from every copy, duplicates dropped.
stripe_map() { # DIR DEV...
	local dir=$1 dev t
	shift
	rm -rf "$dir"
	mkdir -p "$dir"
	for dev in "$@"; do
		stria dump --json --limit 1000000 "$dev" >"$dir/dump.json" 2>"$dir/dump.err" ||
			{ cat "$dir/dump.err" >&2; die "stria dump $dev failed"; }
		json_flat <"$dir/dump.json" >"$dir/dump.flat" || die "cannot parse the dump of $dev"
		awk -F '\t' -v dev="$dev" -v dir="$dir" '
		{ n = split($1, p, "."); v = $2 }
		p[1] == "headers" {
			h = p[2]
			if (!(h in seen)) { seen[h] = 1; order[nh++] = h }
			if (n == 3) f[h, p[3]] = v
			else if (n == 5 && p[3] == "strips") {
				st[h, p[4], p[5]] = v
				if (p[4] + 1 > ns[h]) ns[h] = p[4] + 1
			} else if (n == 5 && p[3] == "pieces") {
				pc[h, p[4], p[5]] = v
				if (p[4] + 1 > np[h]) np[h] = p[4] + 1
			}
		}
		p[1] == "invalid" && n == 3 {
			bad[p[2], p[3]] = v
			if (p[2] + 1 > nb) nb = p[2] + 1
		}
		END {
			for (i = 0; i < nh; i++) {
				h = order[i]
				seq = f[h, "seq"]
				span = 1 + f[h, "strip_kib"] / 4
				print seq, dev, f[h, "block"], span >>(dir "/copies.raw")
				for (j = 0; j < ns[h]; j++)
					print seq, j, st[h, j, 0], st[h, j, 1], span >>(dir "/strips.raw")
				for (j = 0; j < np[h]; j++)
					print seq, pc[h, j, "strip"], pc[h, j, "host_lba"], pc[h, j, "host_len"],
						pc[h, j, "len"] >>(dir "/pieces.raw")
			}
			for (i = 0; i < nb; i++)
				print dev, bad[i, 0], bad[i, 1] >>(dir "/invalid.raw")
		}' "$dir/dump.flat"
	done
	for t in copies strips pieces invalid; do
		touch "$dir/$t.raw"
		awk '!seen[$0]++' "$dir/$t.raw" | sort -k1,1n >"$dir/$t"
		rm "$dir/$t.raw"
	done
	rm -f "$dir/dump.json" "$dir/dump.err" "$dir/dump.flat"
}

# Sequence numbers of the stripes in stripe_map DIR that hold data of the
# host blocks FIRST .. FIRST+COUNT-1.
stripes_holding() { # DIR FIRST COUNT
	awk -v a="$2" -v b="$(($2 + $3))" '$5 > 0 && $3 < b && $3 + $4 > a { print $1 }' \
		"$1/pieces" | sort -un
}

# --- Slices: members carved out of the disks --------------------------------
#
# Every VM test gets the same disks (vm-run --disks, four by default).  A
# test that needs more members than that, several arrays side by side, or
# small members (assembly scans every member's whole data area) makes
# dm-linear slices of them.  Slices never overlap, so every array starts on
# zeroes, and consecutive slices go to consecutive disks, so the members of
# one array share a disk only when it has more members than there are disks.

SLICES=()        # the slices the last call of `slices` made
slice_count=0    # slices made so far
slice_next=()    # first free sector of each disk

# The size in MiB, at most MAX, that lets TOTAL slices fit on the disks.
slice_size() { # TOTAL MAX
	local per_disk=$((($1 + ${#MEMBERS[@]} - 1) / ${#MEMBERS[@]})) small=0 d mib
	for d in "${MEMBERS[@]}"; do
		mib=$(($(blockdev --getsize64 "$d") / 1048576))
		((small == 0 || mib < small)) && small=$mib
	done
	mib=$((small / per_disk))
	echo $((mib < $2 ? mib : $2))
}

# Make N slices of MIB MiB each and list them in SLICES.
slices() { # N MIB
	local sectors=$(($2 * 2048)) i d start
	modprobe dm-mod
	SLICES=()
	for ((i = 0; i < $1; i++)); do
		d=$((slice_count % ${#MEMBERS[@]}))
		start=${slice_next[d]:-0}
		((start + sectors <= $(blockdev --getsz "${MEMBERS[d]}"))) ||
			die "no room for another $2 MiB slice on ${MEMBERS[d]}"
		dmsetup create "stria-slice$slice_count" \
			--table "0 $sectors linear ${MEMBERS[d]} $start"
		SLICES+=("/dev/mapper/stria-slice$slice_count")
		slice_next[d]=$((start + sectors))
		slice_count=$((slice_count + 1))
	done
}

# Remove every slice (their arrays must be stopped).
remove_slices() {
	local i
	for ((i = 0; i < slice_count; i++)); do
		dmsetup remove "stria-slice$i"
	done
	slice_count=0
	slice_next=()
}

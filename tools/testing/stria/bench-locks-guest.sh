#!/bin/bash
# Runs inside the VM (see ./bench --locks): the longest holds of the
# writer's lock and of the volume maps' locks on a large pool, phase by
# phase, and where each lock was taken. Each phase ends with a stop, whose
# kernel log line gives the longest holds since the assembly before it
# (the scan at assembly not counted).
source "$STRIA_LIB/common.sh"

runtime=${1:-10}

# Stops array VOL and prints the longest holds of the phase NAME.
phase_end() { # VOL NAME
	stria stop "$1"
	dmesg | sed -n 's/.*stopping: longest lock holds: writer \([0-9]*\) us (\([^)]*\)), volume maps \([0-9]*\) us (\([^)]*\)).*/\1 \2 \3 \4/p' |
		tail -n 1 | awk -v p="$2" '{ print "LOCKS", p, $1, $2, $3, $4 }'
}

fio_w() { # DEV RW SIZE [ARGS]
	local dev=$1 rw=$2 size=$3
	shift 3
	fio --name=locks --filename="$dev" --direct=1 --ioengine=io_uring --rw="$rw" \
		--bs=4k --iodepth=32 --size="$size" --randrepeat=0 "$@" >/dev/null
}

vol=$(fresh_array --raid 5)
fio_w "$vol" write 2G --bs=1M
fio_w "$vol" randwrite 2G --time_based --runtime="$runtime"
for _ in 1 2 3 4 5; do stria status --json "$vol" >/dev/null; done
phase_end "$vol" writes+status

vol=$(assemble)
copy=$(stria copy create "$vol" snap)
fio_w "$vol" randwrite 1G --time_based --runtime="$runtime"
stria copy delete "$copy"
phase_end "$vol" copy+delete

vol=$(assemble)
size=$(blockdev --getsize64 "$vol")
stria volume resize "$vol" --size $((size / 2 / 4096 * 4096))
stria volume resize "$vol" --size "$size"
phase_end "$vol" resize

vol=$(assemble)
fio_w "$vol" randwrite 2G --time_based --runtime="$runtime" &
stria gc "$vol" --until-free 100 >/dev/null
wait
stria gc "$vol" --until-free 100 --greedy >/dev/null
phase_end "$vol" gc

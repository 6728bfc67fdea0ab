#!/bin/bash
# Malformed control requests get the right errno and no oops (vm-run
# checks the kernel log).
source "$STRIA_LIB/common.sh"
stria create "${MEMBERS[0]}" "${MEMBERS[1]}" >/dev/null
stria create "${MEMBERS[2]}" "${MEMBERS[3]}" >/dev/null
stria-ioctl-test "${MEMBERS[@]}"

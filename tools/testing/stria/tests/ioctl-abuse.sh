#!/bin/bash
# Malformed control requests get the right errno and no oops (vm-run
# checks the kernel log).
source "$STRIA_LIB/common.sh"
stria-ioctl-test "${MEMBERS[0]}" "${MEMBERS[1]}" "${MEMBERS[2]}"

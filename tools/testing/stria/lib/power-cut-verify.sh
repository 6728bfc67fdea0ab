#!/bin/bash
# Guest half of the power-cut test, after the last cut: the array
# assembles and passes the checks of power-cut-check.sh.
source "$STRIA_LIB/common.sh"
source "$STRIA_LIB/power-cut-check.sh"

vol=$(assemble_shuffled)
pc_check "$vol"
stria stop "$vol"

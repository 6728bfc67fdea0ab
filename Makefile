# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of stria.  Inside a kernel tree, drivers/block/stria/
# builds through its own Kconfig and Makefile instead.
#
#   make [KDIR=/path/to/rust-enabled/linux-7.2]   module and helper
#   make check                                     all tests (host and VM)
#   make check-full                                the same, long variants
#   make demo                                      ext4 on a 4-member array
#   make bench                                     stria vs md RAID-5/RAID-0
#
# Without KDIR, tools/testing/stria/provision builds (once) and caches a
# suitable kernel.

ROOT := $(CURDIR)
PROVISION := $(ROOT)/tools/testing/stria/provision
STRIA_DIR := $(ROOT)/drivers/block/stria

.PHONY: all module clippy helper check check-full demo bench clean

all: module helper

module:
	@kdir="$${KDIR:-$$($(PROVISION))}" && \
	$(MAKE) -C "$$kdir" M=$(STRIA_DIR) CONFIG_BLK_DEV_STRIA=m modules

# The module again, through clippy with the kernel's lint set.
clippy:
	@kdir="$${KDIR:-$$($(PROVISION))}" && \
	touch $(STRIA_DIR)/stria_main.rs && \
	$(MAKE) -C "$$kdir" M=$(STRIA_DIR) CONFIG_BLK_DEV_STRIA=m CLIPPY=1 modules

helper:
	cargo build --release --quiet --manifest-path tools/stria/Cargo.toml
	cargo build --release --quiet --manifest-path tools/testing/stria/ioctl-test/Cargo.toml

check:
	@$(ROOT)/tools/testing/stria/check

check-full:
	@STRIA_CHECK_FULL=1 $(ROOT)/tools/testing/stria/check

demo: all
	@$(ROOT)/tools/testing/stria/vm-run --disks 4 --disk-size 512M \
		$(ROOT)/tools/testing/stria/demo.sh

bench: all
	@$(ROOT)/tools/testing/stria/bench

clean:
	rm -f $(STRIA_DIR)/*.o $(STRIA_DIR)/*.ko $(STRIA_DIR)/*.mod $(STRIA_DIR)/*.mod.c \
		$(STRIA_DIR)/.*.cmd $(STRIA_DIR)/modules.order $(STRIA_DIR)/Module.symvers
	cargo clean --quiet --manifest-path tools/stria/Cargo.toml
	cargo clean --quiet --manifest-path tools/testing/stria/ioctl-test/Cargo.toml

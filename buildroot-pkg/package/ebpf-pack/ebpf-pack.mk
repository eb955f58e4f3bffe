################################################################################
#
# ebpf-pack
#
################################################################################

EBPF_PACK_VERSION = $(EBPF_PACK_TREE_VERSION)
EBPF_PACK_SITE = $(EBPF_PACK_TREE_SITE)
EBPF_PACK_SITE_METHOD = $(EBPF_PACK_TREE_SITE_METHOD)
EBPF_PACK_LICENSE = MIT or Apache-2.0
EBPF_PACK_SUBDIR = cli
HOST_EBPF_PACK_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	$(EBPF_PACK_TREE_RSYNC_EXCLUSIONS)

ifeq ($(EBPF_PACK_TREE_SITE_METHOD),local)
HOST_EBPF_PACK_PRE_CONFIGURE_HOOKS += EBPF_PACK_TREE_CARGO_VENDOR
endif

$(eval $(host-cargo-package))

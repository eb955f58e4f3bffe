################################################################################
#
# ebpf-pack BR2_EXTERNAL tree: values and macros shared by its packages
#
################################################################################

# Version of the ebpf-pack sources: the workspace version of the repository's
# Cargo.toml (tests/buildroot_tree.rs keeps the two equal). It names the
# packages (printvars, show-info, legal-info) and the bundles.
EBPF_PACK_TREE_VERSION = 0.1.0

# This tree ships inside the ebpf-pack repository, so the packages build the
# repository around it (its parent directory), with no download. To build a
# git release instead, see README.md ("Building a release instead").
EBPF_PACK_TREE_SITE = $(realpath $(BR2_EXTERNAL_EBPF_PACK_PATH)/..)
EBPF_PACK_TREE_SITE_METHOD = local

# Build outputs of a developer's checkout are not sources.
EBPF_PACK_TREE_RSYNC_EXCLUSIONS = \
	--exclude=/target --exclude=/build --exclude=/dist

# A local source skips Buildroot's download step, and with it the cargo
# vendoring that support/download/cargo-post-process does for downloaded
# crates. Do the same vendoring (same command, same shared cargo home in
# DL_DIR, same lock) before configuring, so that cargo then builds with
# --offline --locked exactly as for a downloaded tarball.
define EBPF_PACK_TREE_CARGO_VENDOR
	mkdir -p $(@D)/.cargo $(BR_CARGO_HOME)
	cd $(@D) && $(HOST_MAKE_ENV) CARGO_HOME=$(BR_CARGO_HOME) \
		flock $(BR_CARGO_HOME)/.br-lock \
		cargo vendor --locked VENDOR > $(@D)/.cargo/config.toml
endef

# Buildroot's facts, in the words of an ebpf-pack target file
# (docs/TARGETS.md). Config.in only offers the packages where these map.
EBPF_PACK_TREE_ARCH = $(if $(BR2_aarch64),arm64,$(call qstrip,$(BR2_ARCH)))
EBPF_PACK_TREE_ENDIAN = $(call LOWERCASE,$(call qstrip,$(BR2_ENDIAN)))
EBPF_PACK_TREE_LIBC = $(if $(BR2_TOOLCHAIN_USES_MUSL),musl,glibc)

# Everything a bundle build needs: the CLI, the loader it packs, the kernel
# it is built against (vmlinux and .config), host clang with the BPF backend
# (see LLVM_TARGETS_TO_BUILD below), llvm-strip (host-llvm), libbpf headers,
# bpftool (vmlinux.h, tailored BTF) and pahole (BTF from DWARF when the kernel
# has no BTF of its own).
EBPF_PACK_TREE_BUNDLE_DEPENDENCIES = \
	host-ebpf-pack \
	ebpf-run \
	linux \
	host-clang \
	host-llvm \
	host-libbpf \
	host-bpftool \
	host-pahole

# The CLI finds bpftool and pahole on PATH (HOST_MAKE_ENV puts HOST_DIR
# first). clang is named explicitly: clang.br_real is host-clang without
# Buildroot's toolchain wrapper, whose target flags do not belong in a BPF
# compile; the build machine's own clang-19 would otherwise be found first.
# The CLI carries its probe headers (ebpf_pack.h, per-arch vmlinux.h) and
# unpacks them into its cache, kept in Buildroot's build folder.
EBPF_PACK_TREE_CLI_ENV = \
	$(HOST_MAKE_ENV) \
	EBPF_PACK_CACHE=$(BUILD_DIR)/ebpf-pack-cache \
	CLANG=$(HOST_DIR)/bin/clang.br_real \
	LLVM_STRIP=$(HOST_DIR)/bin/llvm-strip \
	C_INCLUDE_PATH=$(HOST_DIR)/include \
	EBPF_PACK_SKIP_LIBBPF_CHECK=1

# Builds and verifies one bundle with the ebpf-pack CLI.
#  $(1): project directory (holds probes/NAME.bpf.c)
#  $(2): bundle name, $(3): target name
#  $(4): probes to build, space separated (empty: every probe of the project)
# The target file is rendered from Buildroot's facts into the project's
# targets/ folder; the CLI validates it, checks the kernel's .config, makes
# the BTF from $(LINUX_DIR)/vmlinux, packs the loader Buildroot built, and
# verifies every byte before it writes dist/. The verify run re-reads the
# bundle, whose manifest (docs/MANIFEST.md) must name Buildroot's byte order.
define EBPF_PACK_TREE_BUILD_BUNDLE
	mkdir -p $(1)/targets
	sed -e 's%@NAME@%$(3)%' \
		-e 's%@ARCH@%$(EBPF_PACK_TREE_ARCH)%' \
		-e 's%@ENDIAN@%$(EBPF_PACK_TREE_ENDIAN)%' \
		-e 's%@LIBC@%$(EBPF_PACK_TREE_LIBC)%' \
		-e 's%@TRIPLE@%$(RUSTC_TARGET_NAME)%' \
		-e 's%@LINKER@%$(TARGET_CC)%' \
		-e "s%@KERNEL_VERSION@%$$(echo $(LINUX_VERSION_PROBED) | cut -d. -f1-2)%" \
		-e 's%@VMLINUX@%$(LINUX_DIR)/vmlinux%' \
		-e 's%@KERNEL_CONFIG@%$(LINUX_DIR)/.config%' \
		$(BR2_EXTERNAL_EBPF_PACK_PATH)/support/target.yaml.in \
		> $(1)/targets/$(3).yaml
	$(if $(strip $(4)),printf 'probes: [%s]\n' \
		'$(subst $(space),$(comma)$(space),$(strip $(4)))' \
		>> $(1)/targets/$(3).yaml)
	$(EBPF_PACK_TREE_CLI_ENV) $(HOST_DIR)/bin/ebpf-pack -v -C $(1) \
		build --target $(3) \
		--loader $(TARGET_DIR)/usr/bin/ebpf-run \
		--bundle-name $(2) \
		--bundle-version $(EBPF_PACK_TREE_VERSION)
	$(HOST_DIR)/bin/ebpf-pack verify --target $(3) \
		$(1)/dist/$(2)-$(EBPF_PACK_TREE_VERSION)-$(3).tar.gz
	tar -xzOf $(1)/dist/$(2)-$(EBPF_PACK_TREE_VERSION)-$(3).tar.gz \
		$(2)-$(EBPF_PACK_TREE_VERSION)-$(3)/manifest.json \
		| grep -q '"endian": "$(EBPF_PACK_TREE_ENDIAN)"'
endef

# Installs a bundle built by EBPF_PACK_TREE_BUILD_BUNDLE (same arguments):
#  - the verified tarball and its .sha256 in $(BINARIES_DIR)/ebpf-pack/, to
#    copy to other boards;
#  - its contents in /usr/share/ebpf-pack/<bundle>/ on the target, where
#    ./ebpf-run is a two-line script that runs /usr/bin/ebpf-run (the same
#    build, which Buildroot strips) on this bundle, so that target-finalize
#    never modifies a file the bundle's SHA256SUMS lists.
define EBPF_PACK_TREE_INSTALL_BUNDLE
	$(INSTALL) -D -m 0644 \
		$(1)/dist/$(2)-$(EBPF_PACK_TREE_VERSION)-$(3).tar.gz \
		$(1)/dist/$(2)-$(EBPF_PACK_TREE_VERSION)-$(3).tar.gz.sha256 \
		-t $(BINARIES_DIR)/ebpf-pack
	rm -rf $(TARGET_DIR)/usr/share/ebpf-pack/$(2)-$(EBPF_PACK_TREE_VERSION)-$(3)
	mkdir -p $(TARGET_DIR)/usr/share/ebpf-pack
	tar -xzf $(1)/dist/$(2)-$(EBPF_PACK_TREE_VERSION)-$(3).tar.gz \
		-C $(TARGET_DIR)/usr/share/ebpf-pack
	printf '#!/bin/sh\nexec /usr/bin/ebpf-run --bundle "$${0%%/*}" "$$@"\n' \
		> $(TARGET_DIR)/usr/share/ebpf-pack/$(2)-$(EBPF_PACK_TREE_VERSION)-$(3)/ebpf-run
	chmod 0755 $(TARGET_DIR)/usr/share/ebpf-pack/$(2)-$(EBPF_PACK_TREE_VERSION)-$(3)/ebpf-run
endef

# host-llvm builds only the backend of the target architecture
# (package/llvm-project/llvm/llvm.mk), and host-clang has no option of its
# own. This file is included after every upstream package .mk, and
# HOST_LLVM_CONF_OPTS uses LLVM_TARGETS_TO_BUILD with deferred expansion,
# so appending here adds the BPF backend to host-llvm (and to a target llvm,
# where BR2_PACKAGE_LLVM_BPF would add it too). Every bundle package selects
# host-ebpf-pack.
ifeq ($(BR2_PACKAGE_HOST_EBPF_PACK),y)
ifeq ($(filter BPF,$(LLVM_TARGETS_TO_BUILD)),)
LLVM_TARGETS_TO_BUILD += BPF
endif
endif

include $(sort $(wildcard $(BR2_EXTERNAL_EBPF_PACK_PATH)/package/*/*.mk))

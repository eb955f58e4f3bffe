SUMMARY = "eBPF tools for the board: ebpf-pack's probes and meta-oe's bpftool"
DESCRIPTION = "The ebpf-pack probes bundle plus bpftool to inspect loaded programs and maps. \
               Parsed only when meta-oe (openembedded-layer) is in BBLAYERS."
HOMEPAGE = "https://github.com/ebpf-pack/ebpf-pack"
BUGTRACKER = "https://github.com/ebpf-pack/ebpf-pack/issues"
SECTION = "devel"

PACKAGE_ARCH = "${MACHINE_ARCH}"

inherit packagegroup

RDEPENDS:${PN} = "bpftool ebpf-pack-probes"

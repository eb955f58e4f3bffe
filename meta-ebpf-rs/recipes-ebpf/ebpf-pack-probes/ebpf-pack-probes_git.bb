SUMMARY = "ebpf-pack's ready-made eBPF tools: opensnoop, execsnoop, syscount"
DESCRIPTION = "The CO-RE probes of the ebpf-pack project, built for this MACHINE's kernel by the \
               ebpf_pack class and installed as one bundle: run `ebpf-pack-probes opensnoop` on the board."
SECTION = "devel"

require recipes-devtools/ebpf-pack/ebpf-pack-source.inc

# The objects also carry code of libbpf's BPF-side headers (ebpf-pack-libbpf-headers-native).
LICENSE = "(MIT | Apache-2.0) & (LGPL-2.1-only | BSD-2-Clause)"
# The workspace states its licence in Cargo.toml's [workspace.package].
LIC_FILES_CHKSUM = "file://Cargo.toml;beginline=9;endline=9;md5=86b31c7756a1a7962f28b62856ed4f05"

inherit ebpf_pack

EBPF_PACK_PROBES_DIR = "${S}/probes"

# A bundle for the target board's kernel: no native or nativesdk variant can exist.
BBCLASSEXTEND = ""

SUMMARY = "libbpf's BPF-side headers for the ebpf_pack class"
DESCRIPTION = "bpf_helpers.h, bpf_core_read.h, bpf_tracing.h and the other headers eBPF programs \
               include from libbpf, installed where the ebpf_pack class finds them; meta-oe's \
               libbpf is not needed."
HOMEPAGE = "https://github.com/libbpf/libbpf"
BUGTRACKER = "https://github.com/libbpf/libbpf/issues"
CVE_PRODUCT = "libbpf"
SECTION = "devel"
LICENSE = "LGPL-2.1-only | BSD-2-Clause"
LIC_FILES_CHKSUM = "file://LICENSE;md5=ef85bb9c22630a7bfbcbbea6ec81ac72 \
                    file://LICENSE.BSD-2-Clause;md5=67cb4c623fc9a9acea2f039dad14f71a \
                    file://LICENSE.LGPL-2.1;md5=b370887980db5dd40659b50909238dbd"

SRC_URI = "git://github.com/libbpf/libbpf.git;protocol=https;branch=master;tag=v${PV}"
SRCREV = "f5dcbae736e5d7f83a35718e01be1a8e3010fa39"

inherit_defer native

# Headers only: nothing to configure or compile.
do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${datadir}/ebpf-pack/libbpf/include/bpf
    for header in bpf_helpers.h bpf_helper_defs.h bpf_core_read.h bpf_tracing.h bpf_endian.h usdt.bpf.h; do
        install -m 0644 ${S}/src/$header ${D}${datadir}/ebpf-pack/libbpf/include/bpf/
    done
}

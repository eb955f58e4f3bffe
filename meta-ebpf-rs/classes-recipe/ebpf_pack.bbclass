#
# SPDX-License-Identifier: MIT
#
# ebpf_pack: build a recipe's CO-RE eBPF probes (*.bpf.c) into a verified ebpf-pack bundle for the
# image's MACHINE and kernel, and package it so that IMAGE_INSTALL:append = " <recipe>" is all an
# image needs. On the board the bundle is unpacked in ${EBPF_PACK_INSTALL_DIR}
# (/usr/share/ebpf-pack/<recipe>/) and `<recipe> [PROBE...]` (a link to its ebpf-run) runs it.
#
# Nothing about probes is done here: `ebpf-pack yocto-target` turns bitbake's facts into a target file
# (and stops with the setting to change when the BTF route cannot work), `ebpf-pack build` compiles,
# verifies and bundles with clang from oe-core and the loader from the ebpf-run recipe.
#
# Settings (all optional):
#   EBPF_PACK_BTF         "builtin" (default): compile against ebpf-pack's per-arch vmlinux.h; CO-RE uses
#                         the board kernel's /sys/kernel/btf/vmlinux, so the kernel needs
#                         CONFIG_DEBUG_INFO_BTF (linux-yocto: KERNEL_DEBUG = "True", needs meta-oe's pahole).
#                         "vmlinux": use the image kernel's own vmlinux from the deploy dir (with .BTF, or
#                         DWARF that pahole turns into BTF); the bundle ships a BTF tailored to its probes,
#                         so the kernel itself needs no BTF. Needs meta-oe (bpftool-native, pahole-native)
#                         and KERNEL_IMAGETYPES:append = " vmlinux".
#   EBPF_PACK_VMLINUX     the deployed vmlinux for the "vmlinux" route
#   EBPF_PACK_PROBES_DIR  where the recipe's *.bpf.c (and *.h, include/) are; default ${S}
#   EBPF_PACK_PROBES      probe names to build (file stems); default: every *.bpf.c
#   EBPF_PACK_BPF_CPU     clang -mcpu (v1..v4); default: ebpf-pack's per-arch default
#   EBPF_PACK_INSTALL_DIR where the unpacked bundle goes on the board
#   EBPF_PACK_COMMAND     name of the ${bindir} link to the bundle's ebpf-run; empty: no link

EBPF_PACK_BTF ??= "builtin"
EBPF_PACK_VMLINUX ??= "${DEPLOY_DIR_IMAGE}/vmlinux-${KERNEL_IMAGE_LINK_NAME}${KERNEL_IMAGE_BIN_EXT}"
EBPF_PACK_PROBES_DIR ??= "${S}"
EBPF_PACK_PROBES ??= ""
EBPF_PACK_BPF_CPU ??= ""
EBPF_PACK_BUNDLE_NAME ??= "${BPN}"
EBPF_PACK_BUNDLE_VERSION ??= "${PV}"
EBPF_PACK_INSTALL_DIR ??= "${datadir}/ebpf-pack/${BPN}"
EBPF_PACK_COMMAND ??= "${BPN}"

# Build out of the source tree. The project ebpf-pack builds in: the recipe's probes and a project file
# naming the bundle; ebpf-pack-native carries its own headers (ebpf_pack.h, per-arch vmlinux.h) and
# unpacks them into its cache, kept inside the build folder.
B = "${WORKDIR}/build"
EBPF_PACK_PROJECT = "${B}/project"
EBPF_PACK_TARGET_FILE = "${B}/target.yaml"
export EBPF_PACK_CACHE = "${B}/ebpf-pack-cache"

inherit deploy kernel-artifact-names

DEPENDS += "ebpf-pack-native ebpf-pack-libbpf-headers-native clang-native llvm-native ebpf-run"

# The TARGET_ARCH values ebpf-pack builds for (cli/src/yocto.rs: YOCTO_TARGET_ARCHES).
COMPATIBLE_HOST = "(x86_64|aarch64|arm|riscv64|mips|mipsel)-.*"

# The bundle is built for this MACHINE's kernel.
PACKAGE_ARCH = "${MACHINE_ARCH}"

# kernel-abiversion and .config of the image kernel.
do_configure[depends] += "virtual/kernel:do_shared_workdir"

# Parse-time checks of the BTF route: a recipe whose route cannot work is skipped with the reason
# (bitbake prints it when an image asks for the recipe), and the vmlinux route adds its dependencies.
# nooelint: oelint.task.noanonpython
python __anonymous() {
    route = d.getVar("EBPF_PACK_BTF")
    if route == "vmlinux":
        if "openembedded-layer" not in (d.getVar("BBFILE_COLLECTIONS") or "").split():
            raise bb.parse.SkipRecipe('EBPF_PACK_BTF = "vmlinux" needs bpftool-native and pahole-native '
                                      'from meta-oe: add meta-openembedded/meta-oe to BBLAYERS, or use '
                                      'EBPF_PACK_BTF = "builtin" with a kernel built with CONFIG_DEBUG_INFO_BTF')
        imagetypes = (d.getVar("KERNEL_IMAGETYPE") or "").split() + (d.getVar("KERNEL_IMAGETYPES") or "").split()
        if "vmlinux" not in imagetypes:
            raise bb.parse.SkipRecipe('EBPF_PACK_BTF = "vmlinux" needs the kernel to deploy its vmlinux: '
                                      'add KERNEL_IMAGETYPES:append = " vmlinux" to local.conf')
        d.appendVar("DEPENDS", " bpftool-native pahole-native")
        d.appendVarFlag("do_configure", "depends", " virtual/kernel:do_deploy")
    elif route != "builtin":
        raise bb.parse.SkipRecipe('EBPF_PACK_BTF = "%s" is not a BTF route: use "builtin" (default) or "vmlinux"' % route)
}

ebpf_pack_do_configure() {
    rm -rf ${EBPF_PACK_PROJECT}
    mkdir -p ${EBPF_PACK_PROJECT}/probes/include
    found=""
    for probe in ${EBPF_PACK_PROBES_DIR}/*.bpf.c; do
        [ -f "$probe" ] || continue
        cp "$probe" ${EBPF_PACK_PROJECT}/probes/
        found=1
    done
    [ -n "$found" ] || bbfatal "no *.bpf.c in EBPF_PACK_PROBES_DIR (${EBPF_PACK_PROBES_DIR}): put the probes in SRC_URI or point EBPF_PACK_PROBES_DIR at them"
    for header in ${EBPF_PACK_PROBES_DIR}/*.h; do
        if [ -f "$header" ]; then
            cp "$header" ${EBPF_PACK_PROJECT}/probes/
        fi
    done
    if [ -d ${EBPF_PACK_PROBES_DIR}/include ]; then
        cp -R ${EBPF_PACK_PROBES_DIR}/include/. ${EBPF_PACK_PROJECT}/probes/include/
    fi
    # The bundle's name and version (dist/NAME-VERSION-MACHINE.tar.gz); docs/PROJECT.md of ebpf-pack.
    printf '%s\n' 'schema: 1' \
        'name: "${EBPF_PACK_BUNDLE_NAME}"' \
        'version: "${EBPF_PACK_BUNDLE_VERSION}"' \
        'probes: ["probes/*.bpf.c"]' \
        'include: [probes/include]' > ${EBPF_PACK_PROJECT}/ebpf-pack.yaml

    ebpf-pack yocto-target \
        --machine "${MACHINE}" \
        --target-arch "${TARGET_ARCH}" \
        --endianness "${SITEINFO_ENDIANNESS}" \
        --bits "${SITEINFO_BITS}" \
        --tclibc "${TCLIBC}" \
        --target-fpu "${TARGET_FPU}" \
        --rust-triple "$(cat ${STAGING_DATADIR}/ebpf-run/rust-triple)" \
        --kernel-abiversion "${STAGING_KERNEL_BUILDDIR}/kernel-abiversion" \
        --kernel-config "${STAGING_KERNEL_BUILDDIR}/.config" \
        --btf "${EBPF_PACK_BTF}" \
        --vmlinux "${EBPF_PACK_VMLINUX}" \
        --bpf-cpu "${EBPF_PACK_BPF_CPU}" \
        --probes "${EBPF_PACK_PROBES}" \
        --output ${EBPF_PACK_TARGET_FILE}
}

ebpf_pack_do_compile() {
    # clang and llvm-strip from oe-core; libbpf's BPF-side headers through CPATH (ebpf-pack's check
    # for host headers in /usr/include does not apply).
    export CLANG="${STAGING_BINDIR_NATIVE}/clang"
    export LLVM_STRIP="${STAGING_BINDIR_NATIVE}/llvm-strip"
    export BPFTOOL="${STAGING_SBINDIR_NATIVE}/bpftool"
    export PAHOLE="${STAGING_BINDIR_NATIVE}/pahole"
    export CPATH="${STAGING_DATADIR_NATIVE}/ebpf-pack/libbpf/include"
    export EBPF_PACK_SKIP_LIBBPF_CHECK=1
    rm -rf ${EBPF_PACK_PROJECT}/dist
    ebpf-pack -C ${EBPF_PACK_PROJECT} build \
        --target-file ${EBPF_PACK_TARGET_FILE} \
        --loader ${STAGING_BINDIR}/ebpf-run
}

ebpf_pack_do_install() {
    install -d ${D}${EBPF_PACK_INSTALL_DIR}
    tar -xzf ${EBPF_PACK_PROJECT}/dist/*.tar.gz --strip-components=1 --no-same-owner \
        -C ${D}${EBPF_PACK_INSTALL_DIR}
    if [ -n "${EBPF_PACK_COMMAND}" ]; then
        install -d ${D}${bindir}
        ln -rs ${D}${EBPF_PACK_INSTALL_DIR}/ebpf-run ${D}${bindir}/${EBPF_PACK_COMMAND}
    fi
}

ebpf_pack_do_deploy() {
    install -d ${DEPLOYDIR}/ebpf-pack
    install -m 0644 ${EBPF_PACK_PROJECT}/dist/*.tar.gz ${EBPF_PACK_PROJECT}/dist/*.tar.gz.sha256 \
        ${DEPLOYDIR}/ebpf-pack/
}
# The body is ebpf_pack_do_deploy, through EXPORT_FUNCTIONS.
# nooelint: oelint.task.addnotaskbody
addtask deploy after do_compile before do_build

FILES:${PN} += "${EBPF_PACK_INSTALL_DIR}"

# The bundle's manifest holds the sha256 of its ebpf-run: stripping it would break `ebpf-run` and
# `ebpf-pack verify` on the board (it is stripped already, in the ebpf-run recipe's sysroot). The
# BPF objects are not executables, so packaging leaves them alone.
INHIBIT_PACKAGE_STRIP_FILES += "${PKGD}${EBPF_PACK_INSTALL_DIR}/ebpf-run"

ebpf_pack_do_configure[doc] = "Assembles the ebpf-pack project and writes the target file from bitbake's facts"
ebpf_pack_do_compile[doc] = "Builds and verifies the bundle with ebpf-pack, clang and the ebpf-run recipe's loader"
ebpf_pack_do_install[doc] = "Installs the unpacked bundle and the command that runs it"
ebpf_pack_do_deploy[doc] = "Deploys the bundle tarball and its .sha256 to DEPLOY_DIR_IMAGE/ebpf-pack"

EXPORT_FUNCTIONS do_configure do_compile do_install do_deploy

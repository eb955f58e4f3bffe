//! The closed set of architectures and every fact that varies by architecture: one table, one `match`.

use std::fmt;

use ebpf_pack_manifest::Endian;
use serde::Deserialize;

/// A CPU architecture a board can have. Everything arch-specific is derived from this enum here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// 64-bit x86 (PCs, VMs, this build host).
    X86_64,
    /// 64-bit ARM (Raspberry Pi 3/4/5, most current SoCs).
    Arm64,
    /// 32-bit ARMv7-A, hard-float (BeagleBone, i.MX6, STM32MP1).
    Arm,
    /// 64-bit RISC-V, RV64GC (VisionFive 2, Milk-V).
    Riscv64,
    /// 64-bit IBM Z: the big-endian 64-bit proof target.
    S390x,
    /// 32-bit big-endian MIPS (older routers).
    Mips,
    /// 32-bit little-endian MIPS (MediaTek MT7621 routers).
    Mipsel,
}

/// C library of the board; the loader is linked statically against it either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    /// GNU libc, linked with `+crt-static`.
    Glibc,
    /// musl libc (static by default in Rust).
    Musl,
}

/// ELF `e_machine` values used by the checks.
pub mod em {
    /// EM_S390
    pub const S390: u16 = 22;
    /// EM_MIPS
    pub const MIPS: u16 = 8;
    /// EM_ARM
    pub const ARM: u16 = 40;
    /// EM_X86_64
    pub const X86_64: u16 = 62;
    /// EM_AARCH64
    pub const AARCH64: u16 = 183;
    /// EM_RISCV
    pub const RISCV: u16 = 243;
    /// EM_BPF
    pub const BPF: u16 = 247;
}

/// The facts of one architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchFacts {
    /// Name as written in target files.
    pub name: &'static str,
    /// Byte order.
    pub endian: Endian,
    /// Pointer width in bits.
    pub bits: u8,
    /// Value of clang's `-D__TARGET_ARCH_<x>` for libbpf's `bpf_tracing.h`.
    pub target_arch_define: &'static str,
    /// ELF `e_machine` of native executables.
    pub elf_machine: u16,
    /// Rust triple for a musl loader, and for a glibc one.
    pub triples: (&'static str, &'static str),
    /// First components of Rust triples that build code for this arch (to check a target file's `triple`).
    pub triple_arches: &'static [&'static str],
    /// libc used when a target file does not say.
    pub default_libc: Libc,
    /// Linker for the musl triple and for the glibc triple; `None` means rustc's default works here.
    pub linkers: (Option<&'static str>, Option<&'static str>),
    /// Debian packages that provide the cross linker and static C library (for install hints).
    pub linker_package: &'static str,
    /// Pinned `-mcpu` when a target file does not say: v3 (ALU32/JMP32) where every JIT has it, else v2.
    pub default_bpf_cpu: BpfCpu,
    /// Lowest kernel whose BPF trampoline (fentry/fexit) exists on this arch, if any.
    pub trampoline_since: Option<KernelVersion>,
    /// The arch's BPF JIT lacks atomic instructions (errno 524 at load with the JIT on).
    pub jit_lacks_atomics: bool,
    /// The order of clone(2)'s arguments, and so of `syscalls:sys_enter_clone`'s fields.
    pub clone_args: CloneArgs,
    /// Whether a `vmlinux.h` for `kernel.btf: builtin` is committed under `probes/include/<name>/`.
    pub has_builtin_vmlinux_h: bool,
    /// How `ebpf-pack try` boots a kernel of this arch (a target file's `qemu:` section overrides parts).
    pub qemu: QemuFacts,
    /// What `uname -m` prints on a board of this arch (`ebpf-pack run` checks it before pushing).
    pub uname_machines: &'static [&'static str],
}

/// How QEMU emulates a board of one arch: the defaults of `ebpf-pack try`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QemuFacts {
    /// The system emulator (`qemu-system-aarch64`).
    pub binary: &'static str,
    /// Debian package that provides it (for install hints).
    pub package: &'static str,
    /// `-M` machine.
    pub machine: &'static str,
    /// `-cpu` model; `None` keeps the machine's default.
    pub cpu: Option<&'static str>,
    /// Serial console device the kernel writes to (`console=` on the kernel command line).
    pub console: &'static str,
}

impl Arch {
    /// Every architecture, in the order listings show them.
    pub const ALL: [Arch; 7] = [
        Arch::X86_64,
        Arch::Arm64,
        Arch::Arm,
        Arch::Riscv64,
        Arch::S390x,
        Arch::Mips,
        Arch::Mipsel,
    ];

    /// The one table of per-architecture facts.
    pub fn facts(self) -> ArchFacts {
        use Endian::{Big, Little};
        let v = KernelVersion::new;
        match self {
            Arch::X86_64 => ArchFacts {
                name: "x86_64",
                endian: Little,
                bits: 64,
                target_arch_define: "x86",
                elf_machine: em::X86_64,
                triples: ("x86_64-unknown-linux-musl", "x86_64-unknown-linux-gnu"),
                triple_arches: &["x86_64"],
                default_libc: Libc::Musl,
                linkers: (None, None),
                linker_package: "gcc",
                default_bpf_cpu: BpfCpu::V3,
                trampoline_since: Some(v(5, 5)),
                jit_lacks_atomics: false,
                clone_args: CloneArgs::Generic,
                has_builtin_vmlinux_h: true,
                qemu: QemuFacts {
                    binary: "qemu-system-x86_64",
                    package: "qemu-system-x86",
                    machine: "q35",
                    cpu: Some("max"),
                    console: "ttyS0",
                },
                uname_machines: &["x86_64"],
            },
            Arch::Arm64 => ArchFacts {
                name: "arm64",
                endian: Little,
                bits: 64,
                target_arch_define: "arm64",
                elf_machine: em::AARCH64,
                triples: ("aarch64-unknown-linux-musl", "aarch64-unknown-linux-gnu"),
                triple_arches: &["aarch64"],
                default_libc: Libc::Musl,
                linkers: (Some("rust-lld"), Some("aarch64-linux-gnu-gcc")),
                linker_package: "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
                default_bpf_cpu: BpfCpu::V3,
                // The arm64 trampoline exists since 6.0 but attaching it to kernel functions needs
                // ftrace direct calls, which arm64 has since 6.4: Debian's 6.1 arm64 kernel answers
                // fentry with ENOTSUPP (524) in the QEMU guest.
                trampoline_since: Some(v(6, 4)),
                jit_lacks_atomics: false,
                clone_args: CloneArgs::Backwards,
                has_builtin_vmlinux_h: true,
                qemu: QemuFacts {
                    binary: "qemu-system-aarch64",
                    package: "qemu-system-arm",
                    machine: "virt",
                    cpu: Some("cortex-a57"),
                    console: "ttyAMA0",
                },
                uname_machines: &["aarch64", "arm64"],
            },
            Arch::Arm => ArchFacts {
                name: "arm",
                endian: Little,
                bits: 32,
                target_arch_define: "arm",
                elf_machine: em::ARM,
                triples: (
                    "armv7-unknown-linux-musleabihf",
                    "armv7-unknown-linux-gnueabihf",
                ),
                triple_arches: &["armv7", "thumbv7neon"],
                default_libc: Libc::Glibc,
                linkers: (
                    Some("arm-linux-gnueabihf-gcc"),
                    Some("arm-linux-gnueabihf-gcc"),
                ),
                linker_package: "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross",
                default_bpf_cpu: BpfCpu::V2,
                trampoline_since: None,
                jit_lacks_atomics: true,
                clone_args: CloneArgs::Backwards,
                has_builtin_vmlinux_h: true,
                qemu: QemuFacts {
                    binary: "qemu-system-arm",
                    package: "qemu-system-arm",
                    machine: "virt",
                    cpu: Some("cortex-a15"),
                    console: "ttyAMA0",
                },
                uname_machines: &["armv7l", "armv8l", "armv7"],
            },
            Arch::Riscv64 => ArchFacts {
                name: "riscv64",
                endian: Little,
                bits: 64,
                target_arch_define: "riscv",
                elf_machine: em::RISCV,
                triples: (
                    "riscv64gc-unknown-linux-musl",
                    "riscv64gc-unknown-linux-gnu",
                ),
                triple_arches: &["riscv64gc", "riscv64"],
                default_libc: Libc::Glibc,
                linkers: (Some("riscv64-linux-gnu-gcc"), Some("riscv64-linux-gnu-gcc")),
                linker_package: "gcc-riscv64-linux-gnu libc6-dev-riscv64-cross",
                default_bpf_cpu: BpfCpu::V3,
                trampoline_since: Some(v(6, 3)),
                jit_lacks_atomics: false,
                clone_args: CloneArgs::Generic,
                has_builtin_vmlinux_h: true,
                qemu: QemuFacts {
                    binary: "qemu-system-riscv64",
                    package: "qemu-system-misc",
                    machine: "virt",
                    cpu: None,
                    console: "ttyS0",
                },
                uname_machines: &["riscv64"],
            },
            Arch::S390x => ArchFacts {
                name: "s390x",
                endian: Big,
                bits: 64,
                target_arch_define: "s390",
                elf_machine: em::S390,
                triples: ("s390x-unknown-linux-musl", "s390x-unknown-linux-gnu"),
                triple_arches: &["s390x"],
                default_libc: Libc::Glibc,
                linkers: (Some("s390x-linux-gnu-gcc"), Some("s390x-linux-gnu-gcc")),
                linker_package: "gcc-s390x-linux-gnu libc6-dev-s390x-cross",
                default_bpf_cpu: BpfCpu::V3,
                trampoline_since: Some(v(6, 0)),
                jit_lacks_atomics: false,
                clone_args: CloneArgs::Backwards2,
                has_builtin_vmlinux_h: true,
                qemu: QemuFacts {
                    binary: "qemu-system-s390x",
                    package: "qemu-system-misc",
                    machine: "s390-ccw-virtio",
                    cpu: None,
                    console: "ttysclp0",
                },
                uname_machines: &["s390x"],
            },
            Arch::Mips => ArchFacts {
                name: "mips",
                endian: Big,
                bits: 32,
                target_arch_define: "mips",
                elf_machine: em::MIPS,
                triples: ("mips-unknown-linux-musl", "mips-unknown-linux-gnu"),
                triple_arches: &["mips"],
                default_libc: Libc::Musl,
                linkers: (Some("mips-linux-gnu-gcc"), Some("mips-linux-gnu-gcc")),
                linker_package: "gcc-mips-linux-gnu",
                default_bpf_cpu: BpfCpu::V2,
                trampoline_since: None,
                jit_lacks_atomics: true,
                clone_args: CloneArgs::Backwards,
                has_builtin_vmlinux_h: false,
                qemu: QemuFacts {
                    binary: "qemu-system-mips",
                    package: "qemu-system-mips",
                    machine: "malta",
                    cpu: None,
                    console: "ttyS0",
                },
                uname_machines: &["mips"],
            },
            Arch::Mipsel => ArchFacts {
                name: "mipsel",
                endian: Little,
                bits: 32,
                target_arch_define: "mips",
                elf_machine: em::MIPS,
                triples: ("mipsel-unknown-linux-musl", "mipsel-unknown-linux-gnu"),
                triple_arches: &["mipsel"],
                default_libc: Libc::Musl,
                linkers: (Some("mipsel-linux-gnu-gcc"), Some("mipsel-linux-gnu-gcc")),
                linker_package: "gcc-mipsel-linux-gnu",
                default_bpf_cpu: BpfCpu::V2,
                trampoline_since: None,
                jit_lacks_atomics: true,
                clone_args: CloneArgs::Backwards,
                has_builtin_vmlinux_h: false,
                qemu: QemuFacts {
                    binary: "qemu-system-mipsel",
                    package: "qemu-system-mips",
                    machine: "malta",
                    cpu: None,
                    console: "ttyS0",
                },
                uname_machines: &["mips"],
            },
        }
    }

    /// clang's `-target` for BPF objects of this arch: `bpfel` or `bpfeb`.
    pub fn bpf_clang_target(self) -> &'static str {
        match self.facts().endian {
            Endian::Little => "bpfel",
            Endian::Big => "bpfeb",
        }
    }

    /// Default Rust triple for the given libc.
    pub fn triple(self, libc: Libc) -> &'static str {
        let f = self.facts();
        match libc {
            Libc::Musl => f.triples.0,
            Libc::Glibc => f.triples.1,
        }
    }

    /// Default linker for the given libc, if rustc's own default does not suffice.
    pub fn linker(self, libc: Libc) -> Option<&'static str> {
        let f = self.facts();
        match libc {
            Libc::Musl => f.linkers.0,
            Libc::Glibc => f.linkers.1,
        }
    }

    /// Parses an arch name as written in target files.
    pub fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.facts().name == name)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.facts().name)
    }
}

impl fmt::Display for Libc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Libc::Glibc => "glibc",
            Libc::Musl => "musl",
        })
    }
}

/// The argument order of clone(2) on an arch (the kernel's `CONFIG_CLONE_BACKWARDS*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneArgs {
    /// `clone_flags, newsp, parent_tidptr, child_tidptr, tls` (x86_64, riscv64).
    Generic,
    /// `clone_flags, newsp, parent_tidptr, tls, child_tidptr` (arm, arm64, mips).
    Backwards,
    /// `newsp, clone_flags, parent_tidptr, child_tidptr, tls` (s390x).
    Backwards2,
}

impl CloneArgs {
    /// The `sys_enter_clone` row of the one-liner compiler's syscall table in this order (a
    /// tracepoint's fields follow the syscall's definition).
    pub fn syscall_row(self) -> &'static str {
        match self {
            CloneArgs::Generic => {
                "clone\tunsigned long clone_flags\tunsigned long newsp\tint * parent_tidptr\tint * child_tidptr\tunsigned long tls"
            }
            CloneArgs::Backwards => {
                "clone\tunsigned long clone_flags\tunsigned long newsp\tint * parent_tidptr\tunsigned long tls\tint * child_tidptr"
            }
            CloneArgs::Backwards2 => {
                "clone\tunsigned long newsp\tunsigned long clone_flags\tint * parent_tidptr\tint * child_tidptr\tunsigned long tls"
            }
        }
    }
}

/// BPF instruction set version passed to clang as `-mcpu`; pinned, never `probe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BpfCpu {
    /// Base ISA.
    V1,
    /// Adds conditional jumps (`<`, `<=`); every kernel since 4.14.
    V2,
    /// Adds ALU32 and JMP32; kernels since 5.1.
    V3,
    /// Adds sign extension, bswap, 32-bit jumps offsets; kernels since 6.6.
    V4,
}

impl BpfCpu {
    /// clang's spelling (`v2`).
    pub fn as_str(self) -> &'static str {
        match self {
            BpfCpu::V1 => "v1",
            BpfCpu::V2 => "v2",
            BpfCpu::V3 => "v3",
            BpfCpu::V4 => "v4",
        }
    }

    /// Lowest kernel that accepts this instruction set.
    pub fn min_kernel(self) -> KernelVersion {
        match self {
            BpfCpu::V1 => KernelVersion::new(4, 4),
            BpfCpu::V2 => KernelVersion::new(4, 14),
            BpfCpu::V3 => KernelVersion::new(5, 1),
            BpfCpu::V4 => KernelVersion::new(6, 6),
        }
    }
}

/// A kernel `major.minor` version, used for feature gating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// Major number.
    pub major: u16,
    /// Minor number.
    pub minor: u16,
}

impl KernelVersion {
    /// Makes a version.
    pub const fn new(major: u16, minor: u16) -> Self {
        KernelVersion { major, minor }
    }

    /// Parses `"6.1"` or `"6.1.55"` (the patch level is ignored).
    pub fn parse(text: &str) -> Option<KernelVersion> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        if let Some(patch) = parts.next() {
            patch.parse::<u32>().ok()?;
        }
        if parts.next().is_some() || major < 3 {
            return None;
        }
        Some(KernelVersion { major, minor })
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_table() {
        for arch in Arch::ALL {
            assert_eq!(Arch::from_name(arch.facts().name), Some(arch));
        }
        assert_eq!(Arch::from_name("aarch64"), None);
    }

    #[test]
    fn every_arch_boots_under_its_own_qemu() {
        for arch in Arch::ALL {
            let q = arch.facts().qemu;
            assert!(q.binary.starts_with("qemu-system-"), "{arch}");
            assert!(!q.machine.is_empty() && !q.console.is_empty(), "{arch}");
        }
        assert_eq!(Arch::Arm.facts().qemu.cpu, Some("cortex-a15"));
        assert_eq!(Arch::S390x.facts().qemu.machine, "s390-ccw-virtio");
    }

    #[test]
    fn endianness_picks_the_clang_target() {
        assert_eq!(Arch::Arm.bpf_clang_target(), "bpfel");
        assert_eq!(Arch::S390x.bpf_clang_target(), "bpfeb");
        assert_eq!(Arch::Mips.bpf_clang_target(), "bpfeb");
        assert_eq!(Arch::Mipsel.bpf_clang_target(), "bpfel");
    }

    #[test]
    fn kernel_versions_parse_and_order() {
        assert_eq!(KernelVersion::parse("6.1"), Some(KernelVersion::new(6, 1)));
        assert_eq!(
            KernelVersion::parse("5.10.180"),
            Some(KernelVersion::new(5, 10))
        );
        assert!(KernelVersion::parse("6").is_none());
        assert!(KernelVersion::parse("six.one").is_none());
        assert!(KernelVersion::parse("6.1.x").is_none());
        assert!(KernelVersion::new(5, 8) < KernelVersion::new(5, 10));
    }
}

//! Values of `.kconfig` externs as libbpf gives them (`extern int LINUX_KERNEL_VERSION __kconfig;`,
//! `extern bool CONFIG_X __kconfig __weak;`): a kernel `.config` read into options, and each
//! option's value encoded for the extern's C type — bool, libbpf's tristate enum, char, integers of
//! every size, char arrays — with libbpf's rules: `y`/`n` for bool, `y`/`n`/`m` for tristate and
//! char, numbers in decimal, hex or octal that must fit, quoted strings truncated to the array. An
//! option the config lacks is 0 for a `__weak` extern and an error for a strong one. Shared by the
//! loader (the running kernel's config) and the host (a target's `kernel.config`).

use crate::btf::Kind;

/// How an extern's C type takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternType {
    /// `bool`: `y` → 1, `n` → 0.
    Bool,
    /// `enum libbpf_tristate` (4 bytes): `n` → 0, `y` → 1, `m` → 2.
    Tristate,
    /// Any other 1-byte integer (`char`, `u8`, ...): the letter itself (`y`, `n`, `m`) or a
    /// number that fits.
    Char {
        /// Signed (`char` on most arches, `s8`).
        signed: bool,
    },
    /// An integer of `size` bytes (1, 2, 4 or 8).
    Int {
        /// Bytes.
        size: usize,
        /// Signed.
        signed: bool,
    },
    /// `char[len]`: a quoted string, NUL-terminated, cut to fit.
    Chars {
        /// Array length.
        len: usize,
    },
}

impl ExternType {
    /// Bytes the value takes.
    pub fn size(self) -> usize {
        match self {
            ExternType::Bool | ExternType::Char { .. } => 1,
            ExternType::Tristate => 4,
            ExternType::Int { size, .. } => size,
            ExternType::Chars { len } => len,
        }
    }
}

/// The options of a kernel `.config`: `CONFIG_X=value` lines, and `# CONFIG_X is not set` as `n`.
pub fn parse_config(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("# ") {
                let name = rest.strip_suffix(" is not set")?;
                return name
                    .starts_with("CONFIG_")
                    .then(|| (name.to_owned(), "n".to_owned()));
            }
            let (name, value) = line.split_once('=')?;
            name.starts_with("CONFIG_")
                .then(|| (name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The value of option `name` in `config` (the last line wins, as in Kconfig).
pub fn lookup<'c>(config: &'c [(String, String)], name: &str) -> Option<&'c str> {
    config
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `KERNEL_VERSION(a, b, c)` of a kernel release (`6.1.0-56-arm64` → 6.1.0), the patch level capped
/// at 255 as libbpf does.
pub fn kernel_version_code(release: &str) -> Option<u32> {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().flatten().unwrap_or(0).min(255);
    Some(major << 16 | minor.min(255) << 8 | patch)
}

/// `LINUX_KERNEL_VERSION` of the running kernel as libbpf computes it: Ubuntu's
/// `/proc/version_signature` (`Ubuntu 5.15.0-91.101-generic 5.15.131`: its last field), else the
/// `Debian X.Y.Z` of `uname -v` (Debian's release says `6.1.0-28-arm64`, its version
/// `... Debian 6.1.119-1 ...`), else the release.
pub fn running_kernel_version(
    signature: Option<&str>,
    uname_version: &str,
    release: &str,
) -> Option<u32> {
    if let Some(sig) = signature {
        return sig.split_whitespace().nth(2).and_then(kernel_version_code);
    }
    if let Some((_, debian)) = uname_version.split_once(" Debian ")
        && let Some(code) = debian
            .split_whitespace()
            .next()
            .filter(|v| v.split('.').count() >= 3)
            .and_then(kernel_version_code)
    {
        return Some(code);
    }
    kernel_version_code(release)
}

/// Parses a number as C's strtoull with base 0 would: `0x` hex, a leading `0` octal, else decimal;
/// a leading `-` for signed types.
fn parse_number(text: &str) -> Option<(bool, u64)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    Some((negative, value))
}

/// Encodes the value `raw` of extern `name` (`None`: the config does not have it) for `ty`, in the
/// object's byte order. `weak`: the extern is `__weak`, so a missing value is 0.
pub fn encode(
    name: &str,
    ty: ExternType,
    raw: Option<&str>,
    weak: bool,
    big_endian: bool,
) -> Result<Vec<u8>, String> {
    let Some(raw) = raw else {
        return if weak {
            Ok(vec![0; ty.size()])
        } else {
            Err(format!(
                "{name} is not in the kernel's config, and the extern is not __weak"
            ))
        };
    };
    let letter = match raw {
        "y" | "n" | "m" => raw.chars().next(),
        _ => None,
    };
    let int = |v: u64, size: usize| {
        let bytes = v.to_be_bytes();
        let mut out = bytes
            .get(8usize.saturating_sub(size)..)
            .unwrap_or_default()
            .to_vec();
        if !big_endian {
            out.reverse();
        }
        out
    };
    match (ty, letter) {
        (ExternType::Bool, Some('y')) => Ok(vec![1]),
        (ExternType::Bool, Some('n')) => Ok(vec![0]),
        (ExternType::Bool, _) => Err(format!(
            "{name} is `{raw}`, which a bool extern cannot hold (y or n; use enum libbpf_tristate for m)"
        )),
        (ExternType::Tristate, Some(c)) => Ok(int(
            u64::from(match c {
                'y' => 1u8,
                'm' => 2,
                _ => 0,
            }),
            4,
        )),
        (ExternType::Tristate, None) => Err(format!(
            "{name} is `{raw}`, which a tristate extern cannot hold (y, n or m)"
        )),
        (ExternType::Char { .. }, Some(c)) => Ok(vec![c as u8]),
        (ExternType::Char { signed }, None) => encode(
            name,
            ExternType::Int { size: 1, signed },
            Some(raw),
            weak,
            big_endian,
        ),
        (ExternType::Chars { len }, _) => {
            let text = raw
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .ok_or_else(|| {
                    format!("{name} is `{raw}`, not a quoted string for a char array extern")
                })?;
            let mut out = vec![0u8; len];
            let keep = text.len().min(len.saturating_sub(1));
            for (slot, &b) in out.iter_mut().zip(text.as_bytes().iter().take(keep)) {
                *slot = b;
            }
            Ok(out)
        }
        (ExternType::Int { size, signed }, _) => {
            let (negative, magnitude) = parse_number(raw)
                .ok_or_else(|| format!("{name} is `{raw}`, not a number for an integer extern"))?;
            let bits = size as u32 * 8;
            // 2^bits and 2^(bits - 1), for the sizes an extern can have (1, 2, 4 or 8 bytes).
            let limit = |bits: u32| 1u64.checked_shl(bits).unwrap_or(0).wrapping_sub(1);
            let fits = matches!(size, 1 | 2 | 4 | 8)
                && match (signed, negative) {
                    (false, true) => false,
                    (false, false) => magnitude <= limit(bits),
                    (true, false) => magnitude <= limit(bits - 1),
                    (true, true) => magnitude <= limit(bits - 1) + 1,
                };
            if !fits {
                return Err(format!(
                    "{name} is {raw}, which does not fit the extern's {}{bits}-bit type",
                    if signed { "signed " } else { "unsigned " }
                ));
            }
            let value = if negative {
                magnitude.wrapping_neg()
            } else {
                magnitude
            };
            Ok(int(value, size))
        }
    }
}

/// The BTF data section clang puts `__kconfig` externs in.
pub const KCONFIG_DATASEC: &str = ".kconfig";
/// The section their values are placed in before the object is loaded (aya makes a read-only
/// array map of it, as libbpf makes its `.kconfig` map).
pub const KCONFIG_SECTION: &str = ".rodata.kconfig";

/// A `.kconfig` extern of an object: `extern bool CONFIG_X __kconfig __weak;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KconfigExtern {
    /// Its name (`CONFIG_X`, `LINUX_KERNEL_VERSION`).
    pub name: String,
    /// How its C type takes a value.
    pub ty: ExternType,
    /// Declared `__weak`: a missing value is 0 instead of an error.
    pub weak: bool,
    /// Its BTF VAR id.
    var: u32,
}

/// The `.kconfig` externs of a BPF object (none when it has no such data section), in declaration
/// order. A type no value can be given to is refused by name, as libbpf refuses it.
pub fn kconfig_externs(elf: &[u8]) -> Result<Vec<KconfigExtern>, String> {
    use object::read::elf::ElfFile64;
    use object::{Endianness, Object, ObjectSection, ObjectSymbol};

    let file = ElfFile64::<Endianness>::parse(elf).map_err(|e| format!("not a BPF object: {e}"))?;
    let Some(data) = file.section_by_name(".BTF").and_then(|s| s.data().ok()) else {
        return Ok(Vec::new());
    };
    let Ok(btf) = crate::btf::Btf::parse(data) else {
        // An unreadable .BTF is reported by what reads it for everything else.
        return Ok(Vec::new());
    };
    let Some(sec) = (1..btf.type_count() as u32)
        .filter_map(|id| btf.ty(id))
        .find(|t| t.kind == Kind::Datasec && btf.string(t.name_off) == KCONFIG_DATASEC)
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for m in btf.members(sec) {
        let Some(var) = btf.ty(m.ty).filter(|v| v.kind == Kind::Var) else {
            return Err("its BTF .kconfig section holds something other than variables".into());
        };
        let name = btf.string(var.name_off).to_owned();
        let ty = extern_type(&btf, var.size_or_type).ok_or_else(|| {
            format!(
                ".kconfig extern {name} has type `{}`, which takes no kernel config value (bool, \
                 enum libbpf_tristate, char, an integer of 1, 2, 4 or 8 bytes, or a char array)",
                btf.type_name(var.size_or_type)
            )
        })?;
        let weak = file
            .symbols()
            .find(|s| s.name() == Ok(name.as_str()))
            .is_some_and(|s| s.is_weak());
        out.push(KconfigExtern {
            name,
            ty,
            weak,
            var: m.ty,
        });
    }
    Ok(out)
}

/// The [`ExternType`] of BTF type `id`, as libbpf classifies it.
fn extern_type(btf: &crate::btf::Btf, id: u32) -> Option<ExternType> {
    let id = btf.resolve(id);
    let t = btf.ty(id)?;
    let size = t.size_or_type as usize;
    match t.kind {
        Kind::Int { encoding, .. } if encoding & 4 != 0 => (size == 1).then_some(ExternType::Bool),
        Kind::Int { encoding, .. } if size == 1 => Some(ExternType::Char {
            signed: encoding & 1 != 0,
        }),
        Kind::Int { encoding, .. } if matches!(size, 2 | 4 | 8) => Some(ExternType::Int {
            size,
            signed: encoding & 1 != 0,
        }),
        Kind::Enum if btf.string(t.name_off) == "libbpf_tristate" => Some(ExternType::Tristate),
        Kind::Array { elem, nelems } => match extern_type(btf, elem)? {
            ExternType::Char { .. } if nelems > 0 => Some(ExternType::Chars {
                len: nelems as usize,
            }),
            _ => None,
        },
        _ => None,
    }
}

/// What a kernel offers `.kconfig` externs: the running kernel's on the board, a target's on the
/// host.
#[derive(Debug, Clone, Default)]
pub struct KernelFacts {
    /// The kernel release (`uname -r`, or a target's `kernel.version`).
    pub release: String,
    /// `LINUX_KERNEL_VERSION` when it is not the release's (see [`running_kernel_version`]).
    pub version: Option<u32>,
    /// `LINUX_HAS_BPF_COOKIE`: programs can call `bpf_get_attach_cookie`.
    pub bpf_cookie: bool,
    /// `LINUX_HAS_SYSCALL_WRAPPER`: syscalls enter through `__<arch>_sys_*` wrappers.
    pub syscall_wrapper: bool,
    /// The kernel's config options; `None` when none was found.
    pub config: Option<Vec<(String, String)>>,
    /// Where the config was read, or where it was looked for: named in messages.
    pub config_source: String,
}

impl KernelFacts {
    /// The raw value of extern `name` (`Ok(None)`: this kernel's config does not have it), or why
    /// no kernel can give it.
    pub fn raw_value(&self, name: &str) -> Result<Option<String>, String> {
        let yes_no = |b: bool| Some(if b { "y" } else { "n" }.to_owned());
        match name {
            "LINUX_KERNEL_VERSION" => self
                .version
                .or_else(|| kernel_version_code(&self.release))
                .map(|v| Some(v.to_string()))
                .ok_or_else(|| format!("kernel release `{}` has no version number", self.release)),
            "LINUX_HAS_BPF_COOKIE" => Ok(yes_no(self.bpf_cookie)),
            "LINUX_HAS_SYSCALL_WRAPPER" => Ok(yes_no(self.syscall_wrapper)),
            _ if name.starts_with("CONFIG_") => Ok(self
                .config
                .as_deref()
                .and_then(|c| lookup(c, name))
                .map(str::to_owned)),
            _ => Err(format!(
                "unrecognized .kconfig extern {name}: the kernel gives LINUX_KERNEL_VERSION, \
                 LINUX_HAS_BPF_COOKIE, LINUX_HAS_SYSCALL_WRAPPER and CONFIG_* options"
            )),
        }
    }

    /// The encoded value of each extern, or every reason some cannot be given one.
    pub fn values(
        &self,
        externs: &[KconfigExtern],
        big_endian: bool,
    ) -> Result<Vec<Vec<u8>>, Vec<String>> {
        let mut values = Vec::new();
        let mut errors = Vec::new();
        // Strong externs without a value: named together, with where the config was looked for.
        let mut unset = Vec::new();
        for e in externs {
            let value = self.raw_value(&e.name).and_then(|raw| {
                let missing = raw.is_none();
                encode(&e.name, e.ty, raw.as_deref(), e.weak, big_endian).map_err(|why| {
                    if missing {
                        unset.push(e.name.as_str());
                        String::new()
                    } else {
                        why
                    }
                })
            });
            match value {
                Ok(v) => values.push(v),
                Err(why) if why.is_empty() => {}
                Err(why) => errors.push(why),
            }
        }
        if !unset.is_empty() {
            let (names, are) = (
                unset.join(", "),
                if unset.len() == 1 { "is" } else { "are" },
            );
            errors.push(match self.config {
                None => format!(
                    "{names} need the kernel's config, and none was found ({}); not __weak",
                    self.config_source
                ),
                Some(_) => format!(
                    "{names} {are} not set in the kernel's config ({}), and not __weak",
                    self.config_source
                ),
            });
        }
        if errors.is_empty() {
            Ok(values)
        } else {
            Err(errors)
        }
    }
}

/// The object `elf` with its `.kconfig` externs given `values` (from [`KernelFacts::values`]): the
/// values placed in a new [`KCONFIG_SECTION`] section, each extern symbol defined there, and the
/// BTF `.kconfig` section laid out to match — as libbpf fills its `.kconfig` map.
pub fn fill(elf: &[u8], externs: &[KconfigExtern], values: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    use object::read::elf::ElfFile64;
    use object::{Endianness, Object, ObjectSection};

    let mut data = Vec::new();
    let mut defs = Vec::new();
    let mut entries = Vec::new();
    for (e, value) in externs.iter().zip(values) {
        let align = match e.ty {
            ExternType::Tristate => 4,
            ExternType::Int { size, .. } => size,
            _ => 1,
        };
        while data.len() % align != 0 {
            data.push(0);
        }
        let offset = data.len();
        data.extend_from_slice(value);
        defs.push(crate::elf_edit::Definition {
            name: &e.name,
            offset: offset as u64,
            size: value.len() as u64,
        });
        entries.push((e.var, offset as u32, value.len() as u32));
    }
    let mut out = crate::elf_edit::add_data_section(elf, KCONFIG_SECTION, &data, &defs)?;
    let datasec = {
        let file = ElfFile64::<Endianness>::parse(&*out).map_err(|e| e.to_string())?;
        let range = file
            .section_by_name(".BTF")
            .and_then(|s| s.file_range())
            .ok_or("the object has no .BTF section")?;
        let btf = crate::btf::Btf::parse(
            file.section_by_name(".BTF")
                .and_then(|s| s.data().ok())
                .unwrap_or_default(),
        )
        .map_err(|e| e.to_string())?;
        let id = (1..btf.type_count() as u32)
            .find(|&id| {
                btf.ty(id).is_some_and(|t| {
                    t.kind == Kind::Datasec && btf.string(t.name_off) == KCONFIG_DATASEC
                })
            })
            .ok_or("the object's BTF has no .kconfig section")?;
        (range, id)
    };
    let ((start, size), id) = datasec;
    let blob = usize::try_from(start)
        .ok()
        .zip(usize::try_from(start + size).ok())
        .and_then(|(a, b)| out.get_mut(a..b))
        .ok_or("the object's .BTF lies outside the file")?;
    crate::btf::define_datasec(blob, id, data.len() as u32, &entries).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# Automatically generated file; DO NOT EDIT.
CONFIG_BPF_SYSCALL=y
CONFIG_KPROBES=y
# CONFIG_DEBUG_INFO_BTF is not set
CONFIG_NET_SCH_INGRESS=m
CONFIG_HZ=250
CONFIG_PHYS_OFFSET=0x80000000
CONFIG_DEFAULT_HOSTNAME=\"(none)\"
CONFIG_HZ=300
";

    #[test]
    fn configs_read_set_unset_and_last_values() {
        let c = parse_config(CONFIG);
        assert_eq!(lookup(&c, "CONFIG_BPF_SYSCALL"), Some("y"));
        assert_eq!(lookup(&c, "CONFIG_DEBUG_INFO_BTF"), Some("n"));
        assert_eq!(lookup(&c, "CONFIG_HZ"), Some("300"), "the last line wins");
        assert_eq!(lookup(&c, "CONFIG_NOPE"), None);
        assert!(
            c.iter().all(|(n, _)| n.starts_with("CONFIG_")),
            "the comment line is not an option"
        );
    }

    #[test]
    fn values_encode_as_libbpf_gives_them() {
        let c = parse_config(CONFIG);
        let enc = |name: &str, ty, weak| encode(name, ty, lookup(&c, name), weak, false);
        assert_eq!(
            enc("CONFIG_BPF_SYSCALL", ExternType::Bool, false),
            Ok(vec![1])
        );
        assert_eq!(
            enc("CONFIG_DEBUG_INFO_BTF", ExternType::Bool, false),
            Ok(vec![0])
        );
        assert!(
            enc("CONFIG_NET_SCH_INGRESS", ExternType::Bool, false)
                .is_err_and(|e| e.contains("libbpf_tristate"))
        );
        assert_eq!(
            enc("CONFIG_NET_SCH_INGRESS", ExternType::Tristate, false),
            Ok(vec![2, 0, 0, 0])
        );
        let char = ExternType::Char { signed: true };
        assert_eq!(enc("CONFIG_NET_SCH_INGRESS", char, false), Ok(vec![b'm']));
        assert_eq!(
            encode("X", char, Some("-1"), false, false),
            Ok(vec![0xff]),
            "a number"
        );
        let int = |size| ExternType::Int {
            size,
            signed: false,
        };
        assert_eq!(
            enc("CONFIG_HZ", int(4), false),
            Ok(300u32.to_le_bytes().to_vec())
        );
        assert_eq!(
            encode("CONFIG_HZ", int(4), Some("300"), false, true),
            Ok(300u32.to_be_bytes().to_vec()),
            "big-endian objects"
        );
        assert_eq!(
            enc("CONFIG_PHYS_OFFSET", int(8), false),
            Ok(0x8000_0000u64.to_le_bytes().to_vec())
        );
        assert!(enc("CONFIG_PHYS_OFFSET", int(2), false).is_err_and(|e| e.contains("16-bit")));
        assert_eq!(
            enc(
                "CONFIG_DEFAULT_HOSTNAME",
                ExternType::Chars { len: 4 },
                false
            ),
            Ok(b"(no\0".to_vec()),
            "cut to the array, NUL-terminated"
        );
        // Missing: 0 when __weak, an error naming the gap when not.
        assert_eq!(enc("CONFIG_NOPE", int(8), true), Ok(vec![0; 8]));
        assert!(enc("CONFIG_NOPE", int(8), false).is_err_and(|e| e.contains("not __weak")));
        let signed = ExternType::Int {
            size: 1,
            signed: true,
        };
        assert_eq!(
            encode("X", signed, Some("-128"), false, false),
            Ok(vec![0x80])
        );
        assert!(encode("X", signed, Some("128"), false, false).is_err());
        assert_eq!(
            encode("X", int(1), Some("017"), false, false),
            Ok(vec![15]),
            "octal"
        );
        // The edges of the widest types, and a size no extern has.
        assert_eq!(
            encode("X", int(8), Some("18446744073709551615"), false, false),
            Ok(vec![0xff; 8])
        );
        let signed64 = ExternType::Int {
            size: 8,
            signed: true,
        };
        assert_eq!(
            encode("X", signed64, Some("-9223372036854775808"), false, false),
            Ok(i64::MIN.to_le_bytes().to_vec())
        );
        assert!(encode("X", signed64, Some("9223372036854775808"), false, false).is_err());
        assert!(encode("X", int(16), Some("1"), false, false).is_err());
    }

    #[test]
    fn kernel_versions_encode_as_kernel_version() {
        assert_eq!(
            kernel_version_code("6.1.0-56-arm64"),
            Some(6 << 16 | 1 << 8)
        );
        assert_eq!(
            kernel_version_code("5.15.300"),
            Some(5 << 16 | 15 << 8 | 255)
        );
        assert_eq!(kernel_version_code("6.18"), Some(6 << 16 | 18 << 8));
        assert_eq!(kernel_version_code("x"), None);
    }

    #[test]
    fn distributions_name_the_real_version_where_libbpf_looks() {
        let v = |a: u32, b: u32, c: u32| Some(a << 16 | b << 8 | c);
        assert_eq!(
            running_kernel_version(
                None,
                "#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-09)",
                "6.1.0-41-arm64"
            ),
            v(6, 1, 158),
            "Debian's release hides the patch level"
        );
        assert_eq!(
            running_kernel_version(
                Some("Ubuntu 5.15.0-91.101-generic 5.15.131\n"),
                "#101-Ubuntu SMP",
                "5.15.0-91-generic"
            ),
            v(5, 15, 131)
        );
        assert_eq!(
            running_kernel_version(None, "#1 SMP PREEMPT_DYNAMIC @0", "6.18.44-fc"),
            v(6, 18, 44)
        );
    }
}

//! `--set NAME=VALUE`: the `const volatile` globals of a probe (its `.rodata` variables, found through
//! BTF) and the bytes a value becomes, checked against the global's type. Pure: no kernel access.

use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection, ObjectSymbol};

use crate::btf::{Btf, CONVENTION_PREFIX, Kind};
use crate::decode::integer_type;
use crate::failure::{Exit, Failure};
use crate::probe::ProbeObject;

/// `BTF_INT_BOOL`.
const INT_BOOL: u8 = 4;

/// A `const volatile` global: where its bytes live in the object and what type they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Variable name.
    pub name: String,
    /// BTF type id of the variable (with its qualifiers).
    pub ty: u32,
    /// ELF section holding it (`.rodata`, `.rodata.str1.1`, ...): the BTF data section's name.
    pub section: String,
    /// Byte offset inside that section as BTF declares it (clang writes 0: [`apply`] uses the symbol).
    pub offset: u32,
}

/// The settable globals of an object: every variable of a `.rodata*` data section except those of the
/// ebpf-pack conventions (`__ebpf_pack_*`, set by the loader itself).
pub fn settable(btf: &Btf) -> Vec<Global> {
    let mut vars = rodata_vars(btf);
    vars.retain(|g| !g.name.starts_with(CONVENTION_PREFIX));
    vars
}

/// The `.rodata*` variable `name`, convention variables included.
pub fn rodata_var(btf: &Btf, name: &str) -> Option<Global> {
    rodata_vars(btf).into_iter().find(|g| g.name == name)
}

/// Every variable of the object's `.rodata*` data sections.
fn rodata_vars(btf: &Btf) -> Vec<Global> {
    let mut out = Vec::new();
    for id in 1..btf.type_count() as u32 {
        let Some(sec) = btf.ty(id) else { break };
        let section = btf.string(sec.name_off);
        if sec.kind != Kind::Datasec || !section.starts_with(".rodata") {
            continue;
        }
        for entry in btf.members(sec) {
            if let Some(var) = btf.ty(entry.ty).filter(|v| v.kind == Kind::Var) {
                out.push(Global {
                    name: btf.string(var.name_off).to_owned(),
                    ty: var.size_or_type,
                    section: section.to_owned(),
                    offset: entry.offset,
                });
            }
        }
    }
    out
}

/// Where in the object file the `len` bytes of `global` start, if they lie inside its section.
fn file_offset(elf: &ElfFile64<'_, Endianness>, global: &Global, len: usize) -> Option<usize> {
    let section = elf.section_by_name(&global.section)?;
    // clang leaves the BTF data section offsets at 0 for the loader to fix up from the symbol table
    // (libbpf and aya do): the symbol's address is the variable's offset.
    let offset = elf
        .symbols()
        .find(|sym| {
            sym.section_index() == Some(section.index()) && sym.name() == Ok(global.name.as_str())
        })
        .map_or(u64::from(global.offset), |sym| sym.address());
    let (start, size) = section.file_range()?;
    let end = offset.checked_add(len as u64)?;
    (end <= size).then(|| usize::try_from(start + offset).ok())?
}

/// The current value of the settable unsigned integer global `name` of `probe` (after [`apply`]),
/// if it has one of 1 to 8 bytes.
pub fn read_uint(probe: &ProbeObject, name: &str) -> Option<u64> {
    let btf = probe.btf.as_ref()?;
    let global = rodata_var(btf, name)?;
    let (size, _) = integer_type(btf, global.ty)?;
    let elf = ElfFile64::<Endianness>::parse(&*probe.data).ok()?;
    let at = file_offset(&elf, &global, size)?;
    crate::decode::read_uint(probe.data.get(at..at + size)?, btf.is_big_endian())
}

/// The current value of the char array global `name` of `probe` (after [`apply`]), up to its
/// first NUL, if it is one.
pub fn read_string(probe: &ProbeObject, name: &str) -> Option<String> {
    let btf = probe.btf.as_ref()?;
    let global = rodata_var(btf, name)?;
    let size = usize::try_from(btf.size_of(global.ty)?).ok()?;
    let elf = ElfFile64::<Endianness>::parse(&*probe.data).ok()?;
    let at = file_offset(&elf, &global, size)?;
    let bytes = probe.data.get(at..at + size)?;
    let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8(text.to_vec()).ok()
}

/// Writes each setting's bytes into the object's own `.rodata` data, which aya copies into the
/// read-only map it creates. (Doing it here rather than through aya's `override_global` keeps aya's
/// symbol-table patching out of the loader: it costs kilobytes.)
pub fn apply(probe: &mut ProbeObject, settings: &[Setting]) -> Result<(), Failure> {
    if settings.is_empty() {
        return Ok(());
    }
    let mut writes = Vec::with_capacity(settings.len());
    {
        let elf = ElfFile64::<Endianness>::parse(&*probe.data)
            .map_err(|e| Failure::new(Exit::BadInput, format!("probe {}: {e}", probe.name)))?;
        for s in settings {
            let range = file_offset(&elf, &s.global, s.bytes.len());
            let Some(at) = range else {
                return Err(Failure::new(
                    Exit::BadInput,
                    format!(
                        "probe {}: global `{}` lies outside its section {}",
                        probe.name, s.global.name, s.global.section
                    ),
                ));
            };
            writes.push(at);
        }
    }
    for (s, at) in settings.iter().zip(writes) {
        if let Some(dst) = probe.data.get_mut(at..at + s.bytes.len()) {
            dst.copy_from_slice(&s.bytes);
        }
    }
    Ok(())
}

/// The type of a global as shown to people: beneath `const volatile`, typedef names kept (`__u32`).
pub fn type_name(btf: &Btf, ty: u32) -> String {
    btf.type_name(btf.strip_qualifiers(ty))
}

/// Parses an integer: decimal, `0x` hex, optionally negative; `None` when it is neither.
fn parse_int(text: &str) -> Option<i128> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<u64>().ok()?,
    };
    Some(if neg { -i128::from(v) } else { i128::from(v) })
}

/// Writes the low `size` bytes of `v` in the object's byte order.
fn int_bytes(v: i128, size: usize, big_endian: bool) -> Vec<u8> {
    let le = (v as u64).to_le_bytes();
    let mut b: Vec<u8> = le.iter().take(size).copied().collect();
    if big_endian {
        b.reverse();
    }
    b
}

/// The bytes of `text` as a value of type `ty`, or what was expected instead.
pub fn encode(btf: &Btf, ty: u32, text: &str) -> Result<Vec<u8>, String> {
    let big = btf.is_big_endian();
    let id = btf.resolve(ty);
    let t = btf.ty(id).ok_or("an unreadable type")?;
    let what = type_name(btf, ty);
    match t.kind {
        Kind::Int { encoding, .. } if encoding & INT_BOOL != 0 => {
            let v = match text {
                "true" | "1" => 1,
                "false" | "0" => 0,
                _ => return Err(format!("true or false ({what})")),
            };
            Ok(int_bytes(v, t.size_or_type as usize, big))
        }
        Kind::Int { .. } => {
            let (size, signed) =
                integer_type(btf, id).ok_or_else(|| format!("a settable integer, not {what}"))?;
            let bits = size as u32 * 8;
            let (min, max) = if signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            match parse_int(text) {
                Some(v) if (min..=max).contains(&v) => Ok(int_bytes(v, size, big)),
                // Printed as 64-bit numbers: 128-bit formatting would cost the loader kilobytes.
                _ if signed => Err(format!(
                    "an integer from {} to {} ({what}), decimal or 0x hex",
                    min as i64, max as i64
                )),
                _ => Err(format!(
                    "an integer from 0 to {} ({what}), decimal or 0x hex",
                    max as u64
                )),
            }
        }
        Kind::Enum | Kind::Enum64 if matches!(t.size_or_type, 1 | 2 | 4 | 8) => {
            let size = t.size_or_type as usize;
            let named = btf
                .enumerators(t)
                .iter()
                .find(|e| btf.string(e.name_off) == text);
            match (named, parse_int(text)) {
                (Some(e), _) => Ok(int_bytes(i128::from(e.value), size, big)),
                (None, Some(v)) => Ok(int_bytes(v, size, big)),
                (None, None) => {
                    let names: Vec<&str> = btf
                        .enumerators(t)
                        .iter()
                        .map(|e| btf.string(e.name_off))
                        .collect();
                    Err(format!("one of {} ({what})", names.join(", ")))
                }
            }
        }
        Kind::Array { elem, nelems } if btf.size_of(elem) == Some(1) => {
            if text.len() >= nelems as usize {
                return Err(format!(
                    "a string of at most {} bytes ({what})",
                    nelems.saturating_sub(1)
                ));
            }
            let mut b = text.as_bytes().to_vec();
            b.resize(nelems as usize, 0);
            Ok(b)
        }
        _ => Err(format!(
            "nothing: {what} cannot be set from the command line"
        )),
    }
}

/// One `--set` value for one probe: the global and its new bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The global.
    pub global: Global,
    /// Its new value, in the object's byte order.
    pub bytes: Vec<u8>,
}

/// The `--set` values each probe receives, in probe order, then each probe's own tool options
/// (`tool_sets[i]`: `(global, value)` pairs of `ebpf-run TOOL -p 42`). A name no probe declares, or
/// a value its type cannot hold, is a usage error that lists every settable global.
pub fn resolve(
    sets: &[(String, String)],
    tool_sets: &[Vec<(String, String)>],
    probes: &[ProbeObject],
) -> Result<Vec<Vec<Setting>>, Failure> {
    let per_probe: Vec<Vec<Global>> = probes
        .iter()
        .map(|p| p.btf.as_ref().map(settable).unwrap_or_default())
        .collect();
    let mut out: Vec<Vec<Setting>> = vec![Vec::new(); probes.len()];
    let all: Vec<(Option<usize>, &String, &String)> = sets
        .iter()
        .map(|(n, v)| (None, n, v))
        .chain(
            tool_sets
                .iter()
                .enumerate()
                .flat_map(|(i, s)| s.iter().map(move |(n, v)| (Some(i), n, v))),
        )
        .collect();
    for (only, name, text) in all {
        let mut found = false;
        for (i, probe) in probes.iter().enumerate() {
            if only.is_some_and(|o| o != i) {
                continue;
            }
            let mine = per_probe.get(i).map_or(&[][..], Vec::as_slice);
            let (Some(btf), Some(global), Some(settings)) = (
                &probe.btf,
                mine.iter().find(|g| g.name == *name),
                out.get_mut(i),
            ) else {
                continue;
            };
            found = true;
            let bytes = encode(btf, global.ty, text).map_err(|expected| {
                let shown = match only {
                    None => format!("--set {name}={text}"),
                    Some(_) => option_for(probe, name)
                        .map_or(format!("{name}={text}"), |f| format!("{f} {text}")),
                };
                usage(
                    format!("{shown}: probe {}: {name} needs {expected}", probe.name),
                    probes,
                    &per_probe,
                )
            })?;
            settings.retain(|s| s.global.name != *name);
            settings.push(Setting {
                global: global.clone(),
                bytes,
            });
        }
        if !found {
            return Err(usage(
                format!("--set {name}: no selected probe has a `const volatile` global `{name}`"),
                probes,
                &per_probe,
            ));
        }
    }
    Ok(out)
}

/// The tool option of `probe` that sets `global` (`-p`), if one does.
fn option_for(probe: &ProbeObject, global: &str) -> Option<String> {
    let btf = probe.btf.as_ref()?;
    crate::options::tool_options(btf)
        .into_iter()
        .find(|o| o.global == global)
        .map(|o| o.flag)
}

/// A usage failure listing every settable global as `name (type) in probe` detail lines.
fn usage(message: String, probes: &[ProbeObject], per_probe: &[Vec<Global>]) -> Failure {
    let mut f = Failure::new(Exit::Usage, message);
    for (probe, globals) in probes.iter().zip(per_probe) {
        let Some(btf) = &probe.btf else { continue };
        for g in globals {
            f.details.push(format!(
                "{}: {} ({})",
                probe.name,
                g.name,
                type_name(btf, g.ty)
            ));
        }
    }
    if f.details.is_empty() {
        f.hint("the selected probes have no settable globals (`const volatile` variables)")
    } else {
        f.details.insert(0, "settable globals:".into());
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_in_decimal_hex_and_negative() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("0x1F"), Some(31));
        assert_eq!(parse_int("-3"), Some(-3));
        for bad in ["", "-", "x", "1.5", "0x", "12a"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
        assert_eq!(int_bytes(0x0102, 2, false), [2, 1]);
        assert_eq!(int_bytes(0x0102, 4, true), [0, 0, 1, 2]);
        assert_eq!(int_bytes(-1, 1, false), [0xff]);
    }
}

//! A small, defensive reader for BPF Type Format (BTF).
//!
//! It parses the `.BTF` section of a BPF object in either byte order (objects for big-endian boards are
//! `bpfeb`) and answers the few questions `ebpf-run` and `ebpf-pack` ask: what are the `.maps` definitions, which record
//! type does a ring buffer carry, and how is a type laid out. Every read is bounds-checked; malformed input
//! yields a [`BtfError`], never a panic.

use std::fmt;

mod ext;
mod loadable;
mod maps;
mod swap;
mod tailor;
#[cfg(test)]
mod tests;

pub use ext::{CoreRelo, core_relos, ext_has_core_relocs};
pub use loadable::check_loadable;
pub use maps::{
    CLEAR_TAG, CONVENTION_PREFIX, EVENT_VAR_PREFIX, HEAP_MAP_PREFIX, LOST_MAP_PREFIX, MapDef,
    PERF_DEF_PREFIX, PERF_SWITCH_PREFIX, PerfFallback, SCRATCH_TAG,
};
pub use swap::to_byte_order;
pub use tailor::{NeedsFullBtf, RawBtf, tailor};

/// Why a `.BTF` or `.BTF.ext` blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfError(pub &'static str);

impl fmt::Display for BtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BtfError {}

/// The BTF magic number, as read in the blob's own byte order.
const MAGIC: u16 = 0xeb9f;
/// Size of one `struct btf_type` header.
const TYPE_HEADER: usize = 12;
/// Most qualifier/typedef hops followed before a type chain is declared cyclic.
const MAX_HOPS: usize = 32;
/// Deepest array nesting [`Btf::size_of`] follows.
const MAX_DEPTH: u32 = 16;

/// A BTF type kind with the kind-specific data the loader uses (`BTF_KIND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Type id 0.
    Void,
    /// An integer; `encoding` holds `BTF_INT_SIGNED` (1), `BTF_INT_CHAR` (2), `BTF_INT_BOOL` (4).
    Int {
        /// `BTF_INT_*` flags.
        encoding: u8,
        /// Bit offset of the value inside its storage (legacy bitfields).
        bit_offset: u8,
        /// Number of value bits.
        bits: u8,
    },
    /// A pointer to `size_or_type`.
    Ptr,
    /// An array of `nelems` elements of type `elem`.
    Array {
        /// Element type id.
        elem: u32,
        /// Number of elements.
        nelems: u32,
    },
    /// A struct; members in [`Btf::members`].
    Struct,
    /// A union; members in [`Btf::members`].
    Union,
    /// A 32-bit-valued enum; values in [`Btf::enumerators`].
    Enum,
    /// A 64-bit-valued enum; values in [`Btf::enumerators`].
    Enum64,
    /// A forward declaration.
    Fwd,
    /// A typedef of `size_or_type`.
    Typedef,
    /// `volatile` qualifier.
    Volatile,
    /// `const` qualifier.
    Const,
    /// `restrict` qualifier.
    Restrict,
    /// A function.
    Func,
    /// A function prototype; parameters in [`Btf::members`].
    FuncProto,
    /// A global variable of type `size_or_type`.
    Var,
    /// A data section; variables in [`Btf::members`] (`ty` = VAR id, `offset` = byte offset).
    Datasec,
    /// A floating point number.
    Float,
    /// A declaration tag.
    DeclTag,
    /// A type tag.
    TypeTag,
}

impl Kind {
    /// The `BTF_KIND_*` code of this kind, as [`Btf::parse`] read it.
    pub(crate) fn code(self) -> u32 {
        match self {
            Kind::Void => 0,
            Kind::Int { .. } => 1,
            Kind::Ptr => 2,
            Kind::Array { .. } => 3,
            Kind::Struct => 4,
            Kind::Union => 5,
            Kind::Enum => 6,
            Kind::Fwd => 7,
            Kind::Typedef => 8,
            Kind::Volatile => 9,
            Kind::Const => 10,
            Kind::Restrict => 11,
            Kind::Func => 12,
            Kind::FuncProto => 13,
            Kind::Var => 14,
            Kind::Datasec => 15,
            Kind::Float => 16,
            Kind::DeclTag => 17,
            Kind::TypeTag => 18,
            Kind::Enum64 => 19,
        }
    }
}

/// One parsed `struct btf_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Type {
    /// Offset of the name in the string section.
    pub name_off: u32,
    /// Kind and kind-specific data.
    pub kind: Kind,
    /// `kind_flag` bit (bitfield offsets in structs, signedness of enums).
    pub kind_flag: bool,
    /// Size in bytes for sized kinds; referenced type id for PTR, TYPEDEF, qualifiers, VAR, FUNC.
    pub size_or_type: u32,
    first: u32,
    count: u32,
}

/// A struct/union member, a function parameter or a data section entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Name offset (0 for data section entries).
    pub name_off: u32,
    /// Member type id (VAR id for data section entries).
    pub ty: u32,
    /// Raw offset: bit offset (with bitfield size in the top 8 bits when `kind_flag`) for members,
    /// byte offset for data section entries.
    pub offset: u32,
}

/// One enumerator of an ENUM or ENUM64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enumerator {
    /// Name offset.
    pub name_off: u32,
    /// Value, zero-extended from the enum's width.
    pub value: u64,
}

/// Parsed BTF: every type, its members and enumerators, and the string section.
#[derive(Debug, Clone)]
pub struct Btf {
    big_endian: bool,
    types: Vec<Type>,
    members: Vec<Member>,
    enumerators: Vec<Enumerator>,
    strings: Vec<u8>,
}

/// Bounds-checked reads of fixed-width integers in a given byte order.
struct Reader<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl Reader<'_> {
    fn u32(&self, off: usize) -> Result<u32, BtfError> {
        let b: [u8; 4] = self
            .data
            .get(off..)
            .and_then(|rest| rest.first_chunk())
            .copied()
            .ok_or(BtfError("BTF data truncated"))?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
}

/// Detects the byte order of a BTF or BTF.ext blob from its magic; `None` if it is not BTF.
fn byte_order(data: &[u8]) -> Option<bool> {
    let magic = data.get(..2)?;
    if magic == MAGIC.to_le_bytes() {
        Some(false)
    } else if magic == MAGIC.to_be_bytes() {
        Some(true)
    } else {
        None
    }
}

/// Splits a raw BTF blob into its byte order, type section and string section.
fn sections(data: &[u8]) -> Result<(bool, &[u8], &[u8]), BtfError> {
    let big_endian = byte_order(data).ok_or(BtfError("bad BTF magic"))?;
    let r = Reader { data, big_endian };
    let hdr_len = r.u32(4)? as usize;
    let range = |off: usize, len: usize| {
        let start = hdr_len.checked_add(off)?;
        data.get(start..start.checked_add(len)?)
    };
    let types = range(r.u32(8)? as usize, r.u32(12)? as usize)
        .ok_or(BtfError("BTF type section out of bounds"))?;
    let strings = range(r.u32(16)? as usize, r.u32(20)? as usize)
        .ok_or(BtfError("BTF string section out of bounds"))?;
    Ok((big_endian, types, strings))
}

/// Bytes following a type header of `kind` with `vlen` entries; `None` for a kind this reader does not
/// know (its length cannot be known either, so nothing after it can be read).
fn tail_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        // INT encoding, VAR linkage, DECL_TAG component index.
        1 | 14 | 17 => 4,
        // btf_array.
        3 => 12,
        // btf_member, btf_var_secinfo, btf_enum64.
        4 | 5 | 15 | 19 => 12 * vlen,
        // btf_enum, btf_param.
        6 | 13 => 8 * vlen,
        2 | 7..=12 | 16 | 18 => 0,
        _ => return None,
    })
}

/// The offset of each type record in a type section, in type id order from id 1: every type of a
/// known kind and complete, else the iteration ends with the error.
fn type_offsets(
    types: &[u8],
    big_endian: bool,
) -> impl Iterator<Item = Result<usize, BtfError>> + '_ {
    let r = Reader {
        data: types,
        big_endian,
    };
    let mut off = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || off >= types.len() {
            return None;
        }
        let at = off;
        let next = r.u32(at + 4).and_then(|info| {
            let tail = tail_len((info >> 24) & 0x1f, (info & 0xffff) as usize)
                .ok_or(BtfError("unknown BTF type kind"))?;
            Some(at + TYPE_HEADER + tail)
                .filter(|&end| end <= types.len())
                .ok_or(BtfError("BTF data truncated"))
        });
        match next {
            Ok(end) => off = end,
            Err(_) => failed = true,
        }
        Some(next.map(|_| at))
    })
}

/// Checks a raw BTF blob (e.g. the kernel's) without keeping anything: sections in bounds, every type
/// of a known kind and complete. Returns the number of types.
///
/// aya ignores a kernel BTF it cannot parse and would then load CO-RE objects unrelocated; vetting it
/// first this way costs no memory, unlike parsing it a second time.
pub fn check(data: &[u8]) -> Result<usize, BtfError> {
    let (big_endian, types, _) = sections(data)?;
    type_offsets(types, big_endian).try_fold(0, |count, at| at.map(|_| count + 1))
}

/// Points the VAR `var` of a raw BTF blob at type `ty`, in place (the blob keeps its size): how a ring
/// buffer is switched to its perf-buffer definition ([`Btf::perf_fallback`]).
pub fn retype_var(data: &mut [u8], var: u32, ty: u32) -> Result<(), BtfError> {
    let (big_endian, types, _) = sections(data)?;
    let r = Reader {
        data: types,
        big_endian,
    };
    let off = match var.checked_sub(1) {
        Some(index) => type_offsets(types, big_endian)
            .nth(index as usize)
            .transpose()?,
        None => None,
    }
    .ok_or(BtfError("not a VAR type id"))?;
    if (r.u32(off + 4)? >> 24) & 0x1f != 14 {
        return Err(BtfError("not a VAR type id"));
    }
    // The type section starts at hdr_len + type_off; the VAR's type is the header's third word.
    let whole = Reader { data, big_endian };
    let at = (whole.u32(4)? as usize) + (whole.u32(8)? as usize) + off + 8;
    let bytes = if big_endian {
        ty.to_be_bytes()
    } else {
        ty.to_le_bytes()
    };
    data.get_mut(at..at + 4)
        .ok_or(BtfError("BTF data truncated"))?
        .copy_from_slice(&bytes);
    Ok(())
}

/// The offset, inside the type section, of the record of type `id` (1-based).
fn type_offset(types: &[u8], big_endian: bool, id: u32) -> Result<usize, BtfError> {
    let index = id
        .checked_sub(1)
        .ok_or(BtfError("type id 0 has no record"))?;
    type_offsets(types, big_endian)
        .nth(index as usize)
        .transpose()?
        .ok_or(BtfError("type id out of range"))
}

/// Writes `value` at `at` of `data` in the blob's byte order.
fn put_u32(data: &mut [u8], at: usize, value: u32, big_endian: bool) -> Result<(), BtfError> {
    let bytes = if big_endian {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    };
    at.checked_add(4)
        .and_then(|end| data.get_mut(at..end))
        .ok_or(BtfError("BTF data truncated"))?
        .copy_from_slice(&bytes);
    Ok(())
}

/// Lays out the DATASEC `datasec` of a raw BTF blob in place (the blob keeps its size): its size,
/// and for each `(var, offset, size)` the entry of VAR `var`, whose linkage becomes global
/// allocated. How `.kconfig` externs, which have no section of their own, become variables the
/// kernel accepts (it refuses extern linkage) once their values are placed in a data section.
pub fn define_datasec(
    data: &mut [u8],
    datasec: u32,
    size: u32,
    entries: &[(u32, u32, u32)],
) -> Result<(), BtfError> {
    let (big_endian, types, _) = sections(data)?;
    let r = Reader {
        data: types,
        big_endian,
    };
    let sec = type_offset(types, big_endian, datasec)?;
    let info = r.u32(sec + 4)?;
    if (info >> 24) & 0x1f != 15 {
        return Err(BtfError("not a DATASEC type id"));
    }
    let vlen = (info & 0xffff) as usize;
    // Positions in the whole blob: the type section starts at hdr_len + type_off.
    let whole = Reader { data, big_endian };
    let base = (whole.u32(4)? as usize)
        .checked_add(whole.u32(8)? as usize)
        .ok_or(BtfError("BTF type section out of bounds"))?;
    let mut writes = vec![(base + sec + 8, size)];
    for &(var, offset, len) in entries {
        let entry = (0..vlen)
            .map(|i| sec + TYPE_HEADER + 12 * i)
            .find(|&at| r.u32(at).is_ok_and(|ty| ty == var))
            .ok_or(BtfError("variable is not in the DATASEC"))?;
        writes.push((base + entry + 4, offset));
        writes.push((base + entry + 8, len));
        let v = type_offset(types, big_endian, var)?;
        if (r.u32(v + 4)? >> 24) & 0x1f != 14 {
            return Err(BtfError("DATASEC entry is not a VAR"));
        }
        // BTF_VAR_GLOBAL_ALLOCATED.
        writes.push((base + v + TYPE_HEADER, 1));
    }
    for (at, value) in writes {
        put_u32(data, at, value, big_endian)?;
    }
    Ok(())
}

/// A copy of the raw BTF blob `data` in which the BTF-defined map `map` (the VAR of that name, a
/// struct of `__uint`/`__type` pointers) also declares `__uint(value_size, size)`: how a map whose
/// user code sets its value size at run time (`bpf_map__set_value_size`, stack-trace maps) gets one
/// before aya, which has no such setting, creates it. The struct gains a `value_size` member
/// pointing to a new `int[size]` array; the member shares the offset of the struct's last one (the
/// kernel accepts members at equal offsets), so the struct keeps the size its data section entry
/// holds. Type ids and string offsets already in use keep their meaning (`.BTF.ext` refers to them).
pub fn add_map_value_size(data: &[u8], map: &str, size: u32) -> Result<Vec<u8>, BtfError> {
    let (big_endian, types, strings) = sections(data)?;
    let r = Reader {
        data: types,
        big_endian,
    };
    let parsed = Btf::parse(data)?;
    let var = (1..parsed.type_count() as u32)
        .find(|&id| {
            parsed
                .ty(id)
                .is_some_and(|t| t.kind == Kind::Var && parsed.string(t.name_off) == map)
        })
        .ok_or(BtfError("no such map variable"))?;
    let def = parsed
        .ty(var)
        .map(|v| parsed.resolve(v.size_or_type))
        .ok_or(BtfError("no such map variable"))?;
    let body = parsed
        .ty(def)
        .filter(|t| t.kind == Kind::Struct)
        .ok_or(BtfError("the map's definition is not a struct"))?;
    // The element and index types of an `int[N]` the definition already uses (its `type`).
    let int_array = parsed
        .members(body)
        .iter()
        .filter_map(|m| {
            parsed
                .ty(parsed.resolve(m.ty))
                .filter(|p| p.kind == Kind::Ptr)
        })
        .find_map(|p| match parsed.ty(parsed.resolve(p.size_or_type))?.kind {
            Kind::Array { .. } => Some(parsed.resolve(p.size_or_type)),
            _ => None,
        })
        .ok_or(BtfError("the map's definition declares no __uint field"))?;
    let array_at = type_offset(types, big_endian, int_array)?;
    let (elem, index) = (
        r.u32(array_at + TYPE_HEADER)?,
        r.u32(array_at + TYPE_HEADER + 4)?,
    );
    let last_offset = parsed.members(body).last().map_or(0, |m| m.offset);

    let struct_at = type_offset(types, big_endian, def)?;
    let info = r.u32(struct_at + 4)?;
    let vlen = info & 0xffff;
    if vlen == 0xffff {
        return Err(BtfError("the map's definition has too many members"));
    }
    let struct_end = struct_at + TYPE_HEADER + 12 * vlen as usize;
    let count = parsed.type_count() as u32;
    let (array_id, ptr_id) = (count, count + 1);
    let name_off = strings.len() as u32;
    let word = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut new_types = Vec::with_capacity(types.len() + 48);
    new_types.extend_from_slice(
        types
            .get(..struct_end)
            .ok_or(BtfError("BTF data truncated"))?,
    );
    for v in [name_off, ptr_id, last_offset] {
        new_types.extend_from_slice(&word(v));
    }
    new_types.extend_from_slice(types.get(struct_end..).unwrap_or_default());
    new_types
        .get_mut(struct_at + 4..struct_at + 8)
        .ok_or(BtfError("BTF data truncated"))?
        .copy_from_slice(&word(info + 1));
    // `int[size]`, then the pointer to it.
    for v in [0, 3 << 24, 0, elem, index, size, 0, 2 << 24, array_id] {
        new_types.extend_from_slice(&word(v));
    }
    let mut new_strings = strings.to_vec();
    new_strings.extend_from_slice(b"value_size\0");
    let hdr_len = Reader { data, big_endian }.u32(4)? as usize;
    let mut out = data
        .get(..hdr_len)
        .ok_or(BtfError("BTF data truncated"))?
        .to_vec();
    let type_len = new_types.len() as u32;
    for (at, v) in [
        (8, 0),
        (12, type_len),
        (16, type_len),
        (20, new_strings.len() as u32),
    ] {
        put_u32(&mut out, at, v, big_endian)?;
    }
    out.extend_from_slice(&new_types);
    out.extend_from_slice(&new_strings);
    Ok(out)
}

impl Btf {
    /// Parses a raw BTF blob (the content of a `.BTF` section or a `vmlinux.btf` file).
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        let (big_endian, types, strings) = sections(data)?;
        let mut btf = Btf {
            big_endian,
            types: vec![Type {
                name_off: 0,
                kind: Kind::Void,
                kind_flag: false,
                size_or_type: 0,
                first: 0,
                count: 0,
            }],
            members: Vec::new(),
            enumerators: Vec::new(),
            strings: strings.to_vec(),
        };
        let mut off = 0;
        while off < types.len() {
            let header = Reader {
                data: types,
                big_endian,
            };
            let info = header.u32(off + 4)?;
            let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
            let tail_start = off + TYPE_HEADER;
            let next = tail_len(kind, vlen)
                .and_then(|t| tail_start.checked_add(t))
                .ok_or(BtfError("unknown BTF type kind"))?;
            let tail = Reader {
                data: types
                    .get(tail_start..next)
                    .ok_or(BtfError("BTF data truncated"))?,
                big_endian,
            };
            btf.push_type(header.u32(off)?, info, header.u32(off + 8)?, &tail)?;
            off = next;
        }
        Ok(btf)
    }

    /// Decodes one type whose kind-specific tail is exactly `tail`.
    fn push_type(
        &mut self,
        name_off: u32,
        info: u32,
        size_or_type: u32,
        tail: &Reader<'_>,
    ) -> Result<(), BtfError> {
        let kind_code = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let (mut first, mut count) = (0, 0);
        let kind = match kind_code {
            1 => {
                let enc = tail.u32(0)?;
                Kind::Int {
                    encoding: ((enc >> 24) & 0x0f) as u8,
                    bit_offset: ((enc >> 16) & 0xff) as u8,
                    bits: (enc & 0xff) as u8,
                }
            }
            2 => Kind::Ptr,
            3 => Kind::Array {
                elem: tail.u32(0)?,
                nelems: tail.u32(8)?,
            },
            4 | 5 | 13 | 15 => {
                first = self.members.len() as u32;
                count = vlen as u32;
                let stride = if kind_code == 13 { 8 } else { 12 };
                for i in 0..vlen {
                    let at = i * stride;
                    let (a, b) = (tail.u32(at)?, tail.u32(at + 4)?);
                    self.members.push(match kind_code {
                        // btf_var_secinfo: type, offset, size.
                        15 => Member {
                            name_off: 0,
                            ty: a,
                            offset: b,
                        },
                        // btf_param: name_off, type.
                        13 => Member {
                            name_off: a,
                            ty: b,
                            offset: 0,
                        },
                        // btf_member: name_off, type, offset.
                        _ => Member {
                            name_off: a,
                            ty: b,
                            offset: tail.u32(at + 8)?,
                        },
                    });
                }
                match kind_code {
                    4 => Kind::Struct,
                    5 => Kind::Union,
                    13 => Kind::FuncProto,
                    _ => Kind::Datasec,
                }
            }
            6 | 19 => {
                first = self.enumerators.len() as u32;
                count = vlen as u32;
                let stride = if kind_code == 19 { 12 } else { 8 };
                for i in 0..vlen {
                    let at = i * stride;
                    let lo = u64::from(tail.u32(at + 4)?);
                    let value = if kind_code == 19 {
                        u64::from(tail.u32(at + 8)?) << 32 | lo
                    } else {
                        lo
                    };
                    self.enumerators.push(Enumerator {
                        name_off: tail.u32(at)?,
                        value,
                    });
                }
                if kind_code == 6 {
                    Kind::Enum
                } else {
                    Kind::Enum64
                }
            }
            7 => Kind::Fwd,
            8 => Kind::Typedef,
            9 => Kind::Volatile,
            10 => Kind::Const,
            11 => Kind::Restrict,
            12 => Kind::Func,
            14 => Kind::Var,
            16 => Kind::Float,
            17 => Kind::DeclTag,
            18 => Kind::TypeTag,
            _ => return Err(BtfError("unknown BTF type kind")),
        };
        self.types.push(Type {
            name_off,
            kind,
            kind_flag: info >> 31 == 1,
            size_or_type,
            first,
            count,
        });
        Ok(())
    }

    /// Number of types, counting the implicit `void` (id 0).
    pub fn type_count(&self) -> usize {
        self.types.len()
    }

    /// Whether the blob was big-endian (`bpfeb`); data described by it is in the same byte order.
    pub fn is_big_endian(&self) -> bool {
        self.big_endian
    }

    /// The type with id `id`; id 0 is `void`.
    pub fn ty(&self, id: u32) -> Option<&Type> {
        self.types.get(id as usize)
    }

    /// The string at `off` in the string section; empty when out of bounds or not UTF-8.
    pub fn string(&self, off: u32) -> &str {
        let Some(tail) = self.strings.get(off as usize..) else {
            return "";
        };
        let name = tail.split(|&b| b == 0).next().unwrap_or_default();
        std::str::from_utf8(name).unwrap_or("")
    }

    /// Members of a STRUCT, UNION, FUNC_PROTO or DATASEC (empty for other kinds).
    pub fn members(&self, t: &Type) -> &[Member] {
        match t.kind {
            Kind::Struct | Kind::Union | Kind::FuncProto | Kind::Datasec => {
                let start = t.first as usize;
                self.members
                    .get(start..start.saturating_add(t.count as usize))
                    .unwrap_or(&[])
            }
            _ => &[],
        }
    }

    /// Enumerators of an ENUM or ENUM64 (empty for other kinds).
    pub fn enumerators(&self, t: &Type) -> &[Enumerator] {
        match t.kind {
            Kind::Enum | Kind::Enum64 => {
                let start = t.first as usize;
                self.enumerators
                    .get(start..start.saturating_add(t.count as usize))
                    .unwrap_or(&[])
            }
            _ => &[],
        }
    }

    /// Follows `const`/`volatile`/`restrict`/type tags (and typedefs when `typedefs`) to the underlying type.
    fn strip(&self, mut id: u32, typedefs: bool) -> u32 {
        for _ in 0..MAX_HOPS {
            match self.ty(id).map(|t| (t.kind, t.size_or_type)) {
                Some((Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag, next)) => {
                    id = next
                }
                Some((Kind::Typedef, next)) if typedefs => id = next,
                _ => return id,
            }
        }
        0
    }

    /// The type id beneath typedefs and qualifiers.
    pub fn resolve(&self, id: u32) -> u32 {
        self.strip(id, true)
    }

    /// The type id beneath qualifiers only: a typedef (`__u8`) stays visible.
    pub fn strip_qualifiers(&self, id: u32) -> u32 {
        self.strip(id, false)
    }

    /// Size in bytes of a value of type `id`, if it has one.
    pub fn size_of(&self, id: u32) -> Option<u64> {
        self.size_at_depth(id, 0)
    }

    fn size_at_depth(&self, id: u32, depth: u32) -> Option<u64> {
        if depth > MAX_DEPTH {
            return None;
        }
        let t = self.ty(self.resolve(id))?;
        match t.kind {
            Kind::Int { .. }
            | Kind::Struct
            | Kind::Union
            | Kind::Enum
            | Kind::Enum64
            | Kind::Float
            | Kind::Datasec => Some(u64::from(t.size_or_type)),
            // BPF objects always use 64-bit pointers.
            Kind::Ptr => Some(8),
            Kind::Array { elem, nelems } => self
                .size_at_depth(elem, depth + 1)?
                .checked_mul(u64::from(nelems)),
            _ => None,
        }
    }

    /// A C-like spelling of type `id` for listings: `struct event`, `u32`, `char[16]`, `void *`.
    pub fn type_name(&self, id: u32) -> String {
        let mut out = String::new();
        self.spell(id, &mut out, 0);
        out
    }

    fn spell(&self, id: u32, out: &mut String, depth: u32) {
        let Some(t) = self.ty(id) else {
            return out.push('?');
        };
        if depth > MAX_DEPTH {
            return out.push_str("...");
        }
        let name = self.string(t.name_off);
        let tagged = |out: &mut String, tag: &str| {
            out.push_str(tag);
            out.push_str(if name.is_empty() { "{...}" } else { name });
        };
        match t.kind {
            Kind::Void => out.push_str("void"),
            Kind::Struct => tagged(out, "struct "),
            Kind::Union => tagged(out, "union "),
            Kind::Enum | Kind::Enum64 => tagged(out, "enum "),
            Kind::Fwd if t.kind_flag => tagged(out, "union "),
            Kind::Fwd => tagged(out, "struct "),
            Kind::Ptr => {
                self.spell(t.size_or_type, out, depth + 1);
                out.push_str(" *");
            }
            Kind::Const | Kind::Volatile => {
                out.push_str(if t.kind == Kind::Const {
                    "const "
                } else {
                    "volatile "
                });
                self.spell(t.size_or_type, out, depth + 1);
            }
            Kind::Restrict | Kind::TypeTag => self.spell(t.size_or_type, out, depth + 1),
            Kind::Array { elem, nelems } => {
                self.spell(elem, out, depth + 1);
                out.push('[');
                out.push_str(&nelems.to_string());
                out.push(']');
            }
            _ => out.push_str(if name.is_empty() { "?" } else { name }),
        }
    }
}

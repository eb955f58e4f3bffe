//! A small, defensive reader for BPF Type Format (BTF).
//!
//! It parses the `.BTF` section of a BPF object in either byte order (objects for big-endian boards are
//! `bpfeb`) and answers the few questions `ebpf-run` asks: what are the `.maps` definitions, which record
//! type does a ring buffer carry, and how is a type laid out. Every read is bounds-checked; malformed input
//! yields a [`BtfError`], never a panic.

use std::fmt;

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

/// Name prefix of the global that names a ring buffer's record type (see `probes/include/ebpf_pack.h`).
pub const EVENT_VAR_PREFIX: &str = "__ebpf_pack_event_";

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

/// A map declared in a BTF-defined `.maps` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// Map name (the variable's name).
    pub name: String,
    /// `BPF_MAP_TYPE_*` value, when declared.
    pub map_type: Option<u32>,
    /// Key type id, when declared with `__type(key, ...)`.
    pub key: Option<u32>,
    /// Value type id, when declared with `__type(value, ...)`.
    pub value: Option<u32>,
    /// Pinning mode (`LIBBPF_PIN_BY_NAME` = 1), 0 when absent.
    pub pinning: u32,
}

/// Parsed BTF: every type, its members and enumerators, and the string section.
#[derive(Debug, Clone, Default)]
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
        let b = off
            .checked_add(4)
            .and_then(|end| self.data.get(off..end))
            .ok_or(BtfError("BTF data truncated"))?;
        let b = [b[0], b[1], b[2], b[3]];
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

/// Whether a `.BTF.ext` section carries CO-RE relocations (its `core_relo_len` is non-zero).
///
/// The object then needs the kernel's (or a bundled) BTF to be relocated before it can load correctly.
pub fn ext_has_core_relocs(ext: &[u8]) -> Result<bool, BtfError> {
    let big_endian = byte_order(ext).ok_or(BtfError("bad .BTF.ext magic"))?;
    let r = Reader {
        data: ext,
        big_endian,
    };
    let hdr_len = r.u32(4)?;
    // btf_ext_header: magic, version, flags, hdr_len, func_info_{off,len}, line_info_{off,len},
    // then (newer layout, hdr_len >= 32) core_relo_off, core_relo_len.
    if hdr_len < 32 {
        return Ok(false);
    }
    Ok(r.u32(28)? > 0)
}

impl Btf {
    /// Parses a raw BTF blob (the content of a `.BTF` section or a `vmlinux.btf` file).
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        let big_endian = byte_order(data).ok_or(BtfError("bad BTF magic"))?;
        let r = Reader { data, big_endian };
        let hdr_len = r.u32(4)? as usize;
        let type_off = r.u32(8)? as usize;
        let type_len = r.u32(12)? as usize;
        let str_off = r.u32(16)? as usize;
        let str_len = r.u32(20)? as usize;
        let range = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            data.get(start..start.checked_add(len)?)
        };
        let type_data =
            range(type_off, type_len).ok_or(BtfError("BTF type section out of bounds"))?;
        let strings =
            range(str_off, str_len).ok_or(BtfError("BTF string section out of bounds"))?;
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
        btf.parse_types(&Reader {
            data: type_data,
            big_endian,
        })?;
        Ok(btf)
    }

    fn parse_types(&mut self, r: &Reader<'_>) -> Result<(), BtfError> {
        let mut off = 0;
        while off < r.data.len() {
            let name_off = r.u32(off)?;
            let info = r.u32(off + 4)?;
            let size_or_type = r.u32(off + 8)?;
            off += TYPE_HEADER;
            let vlen = (info & 0xffff) as usize;
            let kind_flag = info >> 31 == 1;
            let mut first = 0;
            let mut count = 0;
            let kind = match (info >> 24) & 0x1f {
                1 => {
                    let enc = r.u32(off)?;
                    off += 4;
                    Kind::Int {
                        encoding: ((enc >> 24) & 0x0f) as u8,
                        bit_offset: ((enc >> 16) & 0xff) as u8,
                        bits: (enc & 0xff) as u8,
                    }
                }
                2 => Kind::Ptr,
                3 => {
                    let elem = r.u32(off)?;
                    let nelems = r.u32(off + 8)?;
                    off += 12;
                    Kind::Array { elem, nelems }
                }
                k @ (4 | 5 | 13 | 15) => {
                    first = self.members.len() as u32;
                    count = vlen as u32;
                    // btf_member / btf_var_secinfo: 3 words; btf_param: 2 words.
                    let words = if k == 13 { 2 } else { 3 };
                    for _ in 0..vlen {
                        let a = r.u32(off)?;
                        let b = r.u32(off + 4)?;
                        let c = if words == 3 { r.u32(off + 8)? } else { 0 };
                        off += 4 * words;
                        self.members.push(match k {
                            15 => Member {
                                name_off: 0,
                                ty: a,
                                offset: b,
                            },
                            _ => Member {
                                name_off: a,
                                ty: b,
                                offset: c,
                            },
                        });
                    }
                    match k {
                        4 => Kind::Struct,
                        5 => Kind::Union,
                        13 => Kind::FuncProto,
                        _ => Kind::Datasec,
                    }
                }
                k @ (6 | 19) => {
                    first = self.enumerators.len() as u32;
                    count = vlen as u32;
                    for _ in 0..vlen {
                        let name_off = r.u32(off)?;
                        let lo = r.u32(off + 4)?;
                        let value = if k == 19 {
                            let hi = r.u32(off + 8)?;
                            off += 12;
                            u64::from(hi) << 32 | u64::from(lo)
                        } else {
                            off += 8;
                            u64::from(lo)
                        };
                        self.enumerators.push(Enumerator { name_off, value });
                    }
                    if k == 6 { Kind::Enum } else { Kind::Enum64 }
                }
                7 => Kind::Fwd,
                8 => Kind::Typedef,
                9 => Kind::Volatile,
                10 => Kind::Const,
                11 => Kind::Restrict,
                12 => Kind::Func,
                14 => {
                    off += 4;
                    Kind::Var
                }
                16 => Kind::Float,
                17 => {
                    off += 4;
                    Kind::DeclTag
                }
                18 => Kind::TypeTag,
                _ => return Err(BtfError("unknown BTF type kind")),
            };
            self.types.push(Type {
                name_off,
                kind,
                kind_flag,
                size_or_type,
                first,
                count,
            });
        }
        Ok(())
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
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        std::str::from_utf8(&tail[..end]).unwrap_or("")
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

    /// The type id of the global variable `name`.
    pub fn var_type(&self, name: &str) -> Option<u32> {
        self.types
            .iter()
            .find(|t| t.kind == Kind::Var && self.string(t.name_off) == name)
            .map(|t| t.size_or_type)
    }

    /// The record type a ring buffer map carries, named by the `__ebpf_pack_event_<map>` convention.
    pub fn event_record_type(&self, map: &str) -> Option<u32> {
        let mut var = String::with_capacity(EVENT_VAR_PREFIX.len() + map.len());
        var.push_str(EVENT_VAR_PREFIX);
        var.push_str(map);
        let ptr = self.ty(self.resolve(self.var_type(&var)?))?;
        (ptr.kind == Kind::Ptr).then_some(ptr.size_or_type)
    }

    /// The maps declared in the BTF-defined `.maps` section, in declaration order.
    pub fn map_defs(&self) -> Vec<MapDef> {
        let Some(sec) = self
            .types
            .iter()
            .find(|t| t.kind == Kind::Datasec && self.string(t.name_off) == ".maps")
        else {
            return Vec::new();
        };
        let mut defs = Vec::new();
        for entry in self.members(sec) {
            let Some(var) = self.ty(entry.ty).filter(|v| v.kind == Kind::Var) else {
                continue;
            };
            let mut def = MapDef {
                name: self.string(var.name_off).to_owned(),
                map_type: None,
                key: None,
                value: None,
                pinning: 0,
            };
            let Some(body) = self.ty(self.resolve(var.size_or_type)) else {
                continue;
            };
            for m in self.members(body) {
                // Every field is a pointer: `__uint(n, v)` points to `int[v]`, `__type(n, T)` points to T.
                let Some(ptr) = self.ty(self.resolve(m.ty)).filter(|p| p.kind == Kind::Ptr) else {
                    continue;
                };
                let pointee = ptr.size_or_type;
                let count = match self.ty(self.resolve(pointee)).map(|t| t.kind) {
                    Some(Kind::Array { nelems, .. }) => Some(nelems),
                    _ => None,
                };
                match self.string(m.name_off) {
                    "type" => def.map_type = count,
                    "key" => def.key = Some(pointee),
                    "value" => def.value = Some(pointee),
                    "pinning" => def.pinning = count.unwrap_or(0),
                    _ => {}
                }
            }
            defs.push(def);
        }
        defs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a little-endian or big-endian BTF blob from raw type words and a string table.
    fn blob(big: bool, type_words: &[u32], strings: &[u8]) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend_from_slice(&if big { [0xeb, 0x9f] } else { [0x9f, 0xeb] });
        out.extend_from_slice(&[1, 0]);
        let type_len = (type_words.len() * 4) as u32;
        for v in [24, 0, type_len, type_len, strings.len() as u32] {
            out.extend_from_slice(&w(v));
        }
        for &v in type_words {
            out.extend_from_slice(&w(v));
        }
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn parses_hand_built_types_in_both_byte_orders() {
        // 1: int "int" 4 bytes signed; 2: ptr -> 1; 3: struct "s" { int a; }
        let strings = b"\0int\0s\0a\0";
        let words = [
            1,
            1 << 24,
            4,
            (1 << 24) | 32, // int
            0,
            2 << 24,
            1, // ptr
            5,
            (4 << 24) | 1,
            4,
            7,
            1,
            0, // struct s { a }
        ];
        for big in [false, true] {
            let btf = Btf::parse(&blob(big, &words, strings)).expect("parse");
            assert_eq!(btf.is_big_endian(), big);
            assert_eq!(btf.type_name(1), "int");
            assert_eq!(btf.size_of(1), Some(4));
            assert_eq!(btf.size_of(2), Some(8));
            let s = btf.ty(3).expect("struct");
            assert_eq!(s.kind, Kind::Struct);
            assert_eq!(btf.members(s).len(), 1);
            assert_eq!(btf.string(btf.members(s)[0].name_off), "a");
        }
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let good = blob(false, &[1, 1 << 24, 4, 32], b"\0int\0");
        for cut in 0..good.len() {
            let _ = Btf::parse(&good[..cut]);
        }
        assert!(Btf::parse(b"nope").is_err());
        // Unknown kind 31.
        assert!(Btf::parse(&blob(false, &[0, 31 << 24, 0], b"\0")).is_err());
        // Struct claiming 65535 members with no data.
        assert!(Btf::parse(&blob(false, &[0, (4 << 24) | 0xffff, 4], b"\0")).is_err());
        // Header offsets pointing far outside the blob.
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Btf::parse(&bad).is_err());
    }

    #[test]
    fn cyclic_typedefs_and_out_of_range_ids_resolve_to_nothing() {
        // 1: typedef -> 2, 2: typedef -> 1
        let btf = Btf::parse(&blob(false, &[0, 8 << 24, 2, 0, 8 << 24, 1], b"\0")).expect("parse");
        assert_eq!(btf.size_of(1), None);
        assert_eq!(btf.size_of(99), None);
        assert_eq!(btf.type_name(99), "?");
        assert_eq!(btf.string(1000), "");
    }

    #[test]
    fn btf_ext_core_relo_length_is_read_from_the_header() {
        let mut ext = vec![0x9f, 0xeb, 1, 0];
        for v in [32u32, 0, 0, 0, 0, 0, 16] {
            ext.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(ext_has_core_relocs(&ext), Ok(true));
        ext[28..32].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(ext_has_core_relocs(&ext), Ok(false));
        // An old 24-byte header has no CO-RE part.
        let mut old = vec![0xeb, 0x9f, 1, 0];
        for v in [24u32, 0, 0, 0, 0] {
            old.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(ext_has_core_relocs(&old), Ok(false));
        assert!(ext_has_core_relocs(&old[..6]).is_err());
        assert!(ext_has_core_relocs(b"xx").is_err());
    }
}

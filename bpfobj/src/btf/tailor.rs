//! On-target CO-RE BTF tailoring: out of the running kernel's BTF (megabytes, 100k+ types), the few
//! types the CO-RE relocations of a set of objects can match, as a small raw BTF blob for aya.
//!
//! aya 0.14 relocates against a fully parsed kernel BTF (tens of milliseconds, ~10 MiB on a board);
//! this reads the kernel blob once with an offset index (4 bytes per type) and writes the kind of
//! minimal BTF `bpftool gen min_core_btf` writes on the host, by the rules aya's relocation follows:
//! candidates are the
//! kernel types of the relocation's kind whose name matches without its `___flavor` suffix; a field
//! access keeps, in each candidate, the members it walks through by name (through anonymous members)
//! with their original offsets in a struct of the original size; every kept type keeps what it refers
//! to, where a struct or union reached only by reference (a pointer's target, a member's type) is kept
//! as a shell of its size without members. Type ids change, so relocations that hand kernel type ids to
//! the program (`bpf_core_type_id_kernel`) and type matches are refused: such objects need the full BTF.

use super::{Btf, BtfError, CoreRelo, Kind, Reader, TYPE_HEADER, sections, tail_len, type_offsets};
use crate::probe::sort_short;

/// `enum bpf_core_relo_kind` values with a target side.
const FIELD_KINDS: std::ops::RangeInclusive<u32> = 0..=5;
const TYPE_ID_LOCAL: u32 = 6;
const TYPE_ID_TARGET: u32 = 7;
const TYPE_EXISTS: u32 = 8;
const TYPE_SIZE: u32 = 9;
const ENUMVAL_EXISTS: u32 = 10;
const ENUMVAL_VALUE: u32 = 11;

/// Longest access string walked (aya's limit on spec length is 64).
const MAX_ACCESS: usize = 64;
/// Deepest anonymous-member nesting searched for a member name.
const MAX_ANON_DEPTH: u32 = 32;

/// BTF kind codes (`BTF_KIND_*`).
mod kind {
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

/// Why an object's relocations cannot be served by a tailored BTF (the caller uses the full one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsFullBtf(pub String);

/// A raw BTF blob read in place: an index from type id to the type's offset, nothing decoded ahead.
pub struct RawBtf<'a> {
    big_endian: bool,
    types: &'a [u8],
    strings: &'a [u8],
    /// Offset of each type in `types`; index 0 (void) unused.
    offsets: Vec<u32>,
}

/// One decoded type header.
#[derive(Debug, Clone, Copy)]
struct Header {
    name_off: u32,
    kind: u32,
    vlen: usize,
    kind_flag: bool,
    size_or_type: u32,
    /// Offset of the kind-specific tail in `types`.
    tail: usize,
}

impl<'a> RawBtf<'a> {
    /// Indexes a raw BTF blob: sections in bounds, every type of a known kind and complete.
    pub fn index(data: &'a [u8]) -> Result<RawBtf<'a>, BtfError> {
        let (big_endian, types, strings) = sections(data)?;
        let offsets = std::iter::once(Ok(0))
            .chain(type_offsets(types, big_endian).map(|at| at.map(|at| at as u32)))
            .collect::<Result<Vec<u32>, BtfError>>()?;
        Ok(RawBtf {
            big_endian,
            types,
            strings,
            offsets,
        })
    }

    /// Number of types, counting void.
    pub fn type_count(&self) -> usize {
        self.offsets.len()
    }

    fn u32(&self, off: usize) -> Result<u32, BtfError> {
        Reader {
            data: self.types,
            big_endian: self.big_endian,
        }
        .u32(off)
    }

    /// Where type `id` (not void) starts in the type section.
    fn offset(&self, id: u32) -> Result<usize, BtfError> {
        let off = self
            .offsets
            .get(id as usize)
            .filter(|_| id != 0)
            .ok_or(BtfError("BTF type id out of range"))?;
        Ok(*off as usize)
    }

    fn header(&self, id: u32) -> Result<Header, BtfError> {
        let off = self.offset(id)?;
        let info = self.u32(off + 4)?;
        Ok(Header {
            name_off: self.u32(off)?,
            kind: (info >> 24) & 0x1f,
            vlen: (info & 0xffff) as usize,
            kind_flag: info >> 31 == 1,
            size_or_type: self.u32(off + 8)?,
            tail: off + TYPE_HEADER,
        })
    }

    fn name(&self, off: u32) -> &'a [u8] {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        rest.split(|&b| b == 0).next().unwrap_or_default()
    }

    /// The struct/union member `index`: (name offset, type, raw offset).
    fn member(&self, h: &Header, index: usize) -> Result<(u32, u32, u32), BtfError> {
        let at = h.tail + 12 * index;
        Ok((self.u32(at)?, self.u32(at + 4)?, self.u32(at + 8)?))
    }

    /// The id beneath typedefs, qualifiers and type tags.
    fn resolve(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..32 {
            if id == 0 {
                return Ok(0);
            }
            let h = self.header(id)?;
            match h.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    id = h.size_or_type
                }
                _ => return Ok(id),
            }
        }
        Err(BtfError("BTF type chain too long"))
    }
}

/// Whether a type of `kind` refers to another type in its `size_or_type` word.
fn refers_in_size_or_type(kind: u32) -> bool {
    matches!(
        kind,
        kind::PTR
            | kind::TYPEDEF
            | kind::VOLATILE
            | kind::CONST
            | kind::RESTRICT
            | kind::TYPE_TAG
            | kind::FUNC_PROTO
            | kind::FUNC
            | kind::VAR
            | kind::DECL_TAG
    )
}

/// The name without a `___flavor` suffix, as candidates are matched.
fn essential(name: &[u8]) -> &[u8] {
    name.windows(3)
        .position(|w| w == b"___")
        .and_then(|at| name.get(..at))
        .unwrap_or(name)
}

/// One step of a field access, from the local object's view.
enum Step {
    /// A member, by name.
    Member(Vec<u8>),
    /// An array element.
    Element,
}

/// What one relocation asks of the kernel BTF.
struct Request {
    /// Kinds a candidate may have.
    kinds: Vec<u32>,
    /// The local type's name without its flavor.
    name: Vec<u8>,
    /// For field relocations, the access path after the root element.
    steps: Option<Vec<Step>>,
}

/// What a type of the kernel BTF becomes in the tailored one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Left out.
    No,
    /// Kept whole.
    Whole,
    /// A struct or union kept with the members listed in [`Selection::members`] only.
    Members,
}

/// The types to keep, indexed by kernel type id (plain vectors: small code on the board).
struct Selection<'k, 'a> {
    kernel: &'k RawBtf<'a>,
    keep: Vec<Keep>,
    /// (struct/union id, member index) pairs kept, in no order, possibly repeated.
    members: Vec<(u32, u16)>,
    /// Types already searched for the member being looked up, by id, and which ones to reset.
    searched: Vec<bool>,
    touched: Vec<u32>,
}

impl Selection<'_, '_> {
    /// Keeps type `id` and, transitively, what it refers to (structs and unions as shells).
    fn need(&mut self, id: u32) -> Result<(), BtfError> {
        let mut work = vec![id];
        while let Some(id) = work.pop() {
            let Some(slot) = self.keep.get_mut(id as usize) else {
                return Err(BtfError("BTF type id out of range"));
            };
            if id == 0 || *slot != Keep::No {
                continue;
            }
            let h = self.kernel.header(id)?;
            match h.kind {
                kind::STRUCT | kind::UNION => {
                    *slot = Keep::Members;
                    continue;
                }
                kind::ARRAY => {
                    work.push(self.kernel.u32(h.tail)?);
                    work.push(self.kernel.u32(h.tail + 4)?);
                }
                kind::FUNC_PROTO => {
                    work.push(h.size_or_type);
                    for i in 0..h.vlen {
                        work.push(self.kernel.u32(h.tail + 8 * i + 4)?);
                    }
                }
                // Everything else that refers to a type does so in size_or_type.
                k if refers_in_size_or_type(k) => work.push(h.size_or_type),
                _ => {}
            }
            *slot = Keep::Whole;
        }
        Ok(())
    }

    /// Keeps member `index` of struct/union `id` and its type.
    fn keep_member(&mut self, id: u32, index: usize, ty: u32) -> Result<(), BtfError> {
        self.need(id)?;
        self.members.push((id, index as u16));
        self.need(ty)
    }

    /// [`Selection::walk_member`] from `id`, each type searched at most once.
    fn find_member(&mut self, id: u32, name: &[u8]) -> Result<Option<u32>, BtfError> {
        for t in self.touched.drain(..) {
            if let Some(seen) = self.searched.get_mut(t as usize) {
                *seen = false;
            }
        }
        self.walk_member(id, name, 0)
    }

    /// Finds member `name` of struct/union `id` (searching anonymous members, as aya does), keeps the
    /// path to it, and returns the member's type. Each type is searched once per lookup (see
    /// [`Selection::find_member`]), so anonymous members that repeat a type (or refer back to it)
    /// cost their count, not their count to the power of the depth.
    fn walk_member(&mut self, id: u32, name: &[u8], depth: u32) -> Result<Option<u32>, BtfError> {
        match self.searched.get_mut(id as usize) {
            Some(seen) if !*seen && depth <= MAX_ANON_DEPTH => *seen = true,
            _ => return Ok(None),
        }
        self.touched.push(id);
        let h = self.kernel.header(id)?;
        if !matches!(h.kind, kind::STRUCT | kind::UNION) {
            return Ok(None);
        }
        for index in 0..h.vlen {
            let (name_off, ty, _) = self.kernel.member(&h, index)?;
            let member_name = self.kernel.name(name_off);
            if member_name.is_empty() {
                let inner = self.kernel.resolve(ty)?;
                if let Some(found) = self.walk_member(inner, name, depth + 1)? {
                    self.keep_member(id, index, ty)?;
                    return Ok(Some(found));
                }
            } else if member_name == name {
                self.keep_member(id, index, ty)?;
                return Ok(Some(ty));
            }
        }
        Ok(None)
    }
}

/// Builds the tailored BTF for `objects` (each its own BTF and CO-RE relocations) out of `kernel`, in
/// the kernel blob's byte order. `Ok(Err(_))`: an object needs the full kernel BTF (and why).
pub fn tailor(
    kernel: &RawBtf<'_>,
    objects: &[(&Btf, &[CoreRelo])],
) -> Result<Result<Vec<u8>, NeedsFullBtf>, BtfError> {
    let mut requests = Vec::new();
    for (local, relos) in objects {
        for relo in relos.iter() {
            match request(local, relo)? {
                Ok(Some(r)) => requests.push(r),
                Ok(None) => {}
                Err(why) => return Ok(Err(why)),
            }
        }
    }
    // One pass over the kernel types finds the candidates of every request.
    let mut wanted: Vec<(u32, &[u8])> = requests
        .iter()
        .flat_map(|r| r.kinds.iter().map(|&k| (k, r.name.as_slice())))
        .collect();
    sort_short(&mut wanted, |a, b| a < b);
    wanted.dedup();
    let mut candidates: Vec<Vec<u32>> = vec![Vec::new(); wanted.len()];
    // Most kernel types are functions and pointers: their names are not even looked at.
    let kinds = wanted.iter().fold(0u32, |mask, &(k, _)| mask | 1 << k);
    for id in 1..kernel.type_count() as u32 {
        let off = kernel.offset(id)?;
        if kinds & 1 << ((kernel.u32(off + 4)? >> 24) & 0x1f) == 0 {
            continue;
        }
        let h = kernel.header(id)?;
        let key = (h.kind, essential(kernel.name(h.name_off)));
        if let Some(found) = wanted
            .binary_search(&key)
            .ok()
            .and_then(|at| candidates.get_mut(at))
        {
            found.push(id);
        }
    }
    let mut sel = Selection {
        kernel,
        keep: vec![Keep::No; kernel.type_count()],
        members: Vec::new(),
        searched: vec![false; kernel.type_count()],
        touched: Vec::new(),
    };
    for r in &requests {
        for &k in &r.kinds {
            let Some(found) = wanted
                .binary_search(&(k, r.name.as_slice()))
                .ok()
                .and_then(|at| candidates.get(at))
            else {
                continue;
            };
            for &candidate in found {
                sel.need(candidate)?;
                if let Some(steps) = &r.steps {
                    walk(&mut sel, candidate, steps)?;
                }
            }
        }
    }
    write(kernel, &sel.keep, sel.members).map(Ok)
}

/// What relocation `relo` of object `local` needs from the kernel (`None`: nothing).
fn request(
    local: &Btf,
    relo: &CoreRelo,
) -> Result<Result<Option<Request>, NeedsFullBtf>, BtfError> {
    let refuse = |what: &str| Ok(Err(NeedsFullBtf(what.to_string())));
    match relo.kind {
        TYPE_ID_LOCAL => return Ok(Ok(None)),
        TYPE_ID_TARGET => return refuse("bpf_core_type_id_kernel() needs kernel type ids"),
        k if FIELD_KINDS.contains(&k)
            || matches!(k, TYPE_EXISTS | TYPE_SIZE | ENUMVAL_EXISTS | ENUMVAL_VALUE) => {}
        _ => return refuse("a CO-RE relocation kind that needs the full kernel BTF"),
    }
    let Some(ty) = local.ty(relo.type_id) else {
        return Err(BtfError("CO-RE relocation of an unknown local type"));
    };
    let name = essential(local.string(ty.name_off).as_bytes()).to_vec();
    if name.is_empty() {
        return refuse("a CO-RE relocation on an unnamed type");
    }
    let kinds = if matches!(relo.kind, ENUMVAL_EXISTS | ENUMVAL_VALUE) {
        vec![kind::ENUM, kind::ENUM64]
    } else {
        vec![ty.kind.code()]
    };
    if !FIELD_KINDS.contains(&relo.kind) {
        return Ok(Ok(Some(Request {
            kinds,
            name,
            steps: None,
        })));
    }
    // The local access path: member names (anonymous members are walked through, not named) and
    // array elements, after the root's own element index.
    let access = local.string(relo.access_str_off);
    let parts: Vec<usize> = access
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| BtfError("bad CO-RE access string"))?;
    if parts.is_empty() || parts.len() > MAX_ACCESS {
        return Err(BtfError("bad CO-RE access string"));
    }
    let mut steps = Vec::new();
    let mut cur = local.resolve(relo.type_id);
    for &part in parts.iter().skip(1) {
        let t = local
            .ty(cur)
            .ok_or(BtfError("CO-RE access through an unknown local type"))?;
        match t.kind {
            Kind::Struct | Kind::Union => {
                let m = local
                    .members(t)
                    .get(part)
                    .ok_or(BtfError("CO-RE access past the last member"))?;
                let member_name = local.string(m.name_off);
                if !member_name.is_empty() {
                    steps.push(Step::Member(member_name.as_bytes().to_vec()));
                }
                cur = local.resolve(m.ty);
            }
            Kind::Array { elem, .. } => {
                steps.push(Step::Element);
                cur = local.resolve(elem);
            }
            _ => return Err(BtfError("CO-RE access into a type without members")),
        }
    }
    Ok(Ok(Some(Request {
        kinds,
        name,
        steps: Some(steps),
    })))
}

/// Follows a field access through kernel type `candidate`, keeping every member it passes.
fn walk(sel: &mut Selection<'_, '_>, candidate: u32, steps: &[Step]) -> Result<(), BtfError> {
    let mut target = kernel_resolve_keep(sel, candidate)?;
    for step in steps {
        target = match step {
            Step::Member(name) => match sel.find_member(target, name)? {
                Some(ty) => ty,
                None => return Ok(()),
            },
            Step::Element => {
                let h = sel.kernel.header(target)?;
                if h.kind != kind::ARRAY {
                    return Ok(());
                }
                sel.kernel.u32(h.tail)?
            }
        };
        target = kernel_resolve_keep(sel, target)?;
    }
    Ok(())
}

/// Resolves `id` in the kernel BTF, keeping the typedefs and qualifiers passed on the way.
fn kernel_resolve_keep(sel: &mut Selection<'_, '_>, id: u32) -> Result<u32, BtfError> {
    sel.need(id)?;
    sel.kernel.resolve(id)
}

/// Writes the kept types, renumbered in kernel order, with only the strings they use.
fn write(
    kernel: &RawBtf<'_>,
    keep: &[Keep],
    mut members: Vec<(u32, u16)>,
) -> Result<Vec<u8>, BtfError> {
    sort_short(&mut members, |a, b| a < b);
    members.dedup();
    // New id of each kept type: its rank among the kept ones.
    let mut next = 0;
    let new_id: Vec<u32> = keep
        .iter()
        .map(|k| {
            if *k == Keep::No {
                return 0;
            }
            next += 1;
            next
        })
        .collect();
    let remap = |id: u32| -> Result<u32, BtfError> {
        match new_id.get(id as usize) {
            _ if id == 0 => Ok(0),
            Some(&n) if n != 0 => Ok(n),
            _ => Err(BtfError("tailored BTF refers to a type it does not keep")),
        }
    };
    // Kernel string offset -> offset in the new string section, in first-use order.
    let mut strings: Vec<u8> = vec![0];
    let mut string_at: Vec<(u32, u32)> = Vec::new();
    let mut string = |off: u32| -> u32 {
        let name = kernel.name(off);
        if name.is_empty() {
            return 0;
        }
        match string_at.binary_search_by_key(&off, |&(old, _)| old) {
            Ok(at) => string_at.get(at).map_or(0, |&(_, new)| new),
            Err(at) => {
                let new = strings.len() as u32;
                strings.extend_from_slice(name);
                strings.push(0);
                string_at.insert(at, (off, new));
                new
            }
        }
    };
    let word = |v: u32| {
        if kernel.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut types: Vec<u8> = Vec::new();
    for (id, k) in keep.iter().enumerate() {
        if *k == Keep::No {
            continue;
        }
        let id = id as u32;
        let h = kernel.header(id)?;
        let first = members.partition_point(|&(s, _)| s < id);
        let from_first = members.get(first..).unwrap_or_default();
        let kept_members = from_first
            .get(..from_first.partition_point(|&(s, _)| s == id))
            .unwrap_or_default();
        let vlen = if *k == Keep::Members {
            kept_members.len()
        } else {
            h.vlen
        };
        let info = (u32::from(h.kind_flag) << 31) | (h.kind << 24) | vlen as u32;
        let size_or_type = if refers_in_size_or_type(h.kind) {
            remap(h.size_or_type)?
        } else {
            h.size_or_type
        };
        for v in [string(h.name_off), info, size_or_type] {
            types.extend_from_slice(&word(v));
        }
        match h.kind {
            kind::STRUCT | kind::UNION => {
                for &(_, index) in kept_members {
                    let (name_off, ty, offset) = kernel.member(&h, usize::from(index))?;
                    for v in [string(name_off), remap(ty)?, offset] {
                        types.extend_from_slice(&word(v));
                    }
                }
            }
            kind::ARRAY => {
                let (elem, index, nelems) = (
                    kernel.u32(h.tail)?,
                    kernel.u32(h.tail + 4)?,
                    kernel.u32(h.tail + 8)?,
                );
                for v in [remap(elem)?, remap(index)?, nelems] {
                    types.extend_from_slice(&word(v));
                }
            }
            kind::FUNC_PROTO => {
                for i in 0..h.vlen {
                    let at = h.tail + 8 * i;
                    let (name_off, ty) = (kernel.u32(at)?, kernel.u32(at + 4)?);
                    for v in [string(name_off), remap(ty)?] {
                        types.extend_from_slice(&word(v));
                    }
                }
            }
            kind::ENUM | kind::ENUM64 => {
                let stride = if h.kind == kind::ENUM { 8 } else { 12 };
                for i in 0..h.vlen {
                    let at = h.tail + stride * i;
                    types.extend_from_slice(&word(string(kernel.u32(at)?)));
                    for w in (4..stride).step_by(4) {
                        types.extend_from_slice(&word(kernel.u32(at + w)?));
                    }
                }
            }
            // INT encoding, VAR linkage, DECL_TAG component index: copied as they are.
            k => {
                let len = tail_len(k, h.vlen).ok_or(BtfError("unknown BTF type kind"))?;
                for w in (0..len).step_by(4) {
                    types.extend_from_slice(&word(kernel.u32(h.tail + w)?));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(24 + types.len() + strings.len());
    let magic: u16 = 0xeb9f;
    out.extend_from_slice(&if kernel.big_endian {
        magic.to_be_bytes()
    } else {
        magic.to_le_bytes()
    });
    out.extend_from_slice(&[1, 0]);
    for v in [
        24,
        0,
        types.len() as u32,
        types.len() as u32,
        strings.len() as u32,
    ] {
        out.extend_from_slice(&word(v));
    }
    out.extend_from_slice(&types);
    out.extend_from_slice(&strings);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian raw BTF of `types` (whole records) and `strings`.
    fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let mut out = vec![0x9f, 0xeb, 1, 0];
        let tlen = 4 * types.len() as u32;
        for v in [24, 0, tlen, tlen, strings.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in types {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn flavors_are_cut_from_names() {
        assert_eq!(essential(b"task_struct___old"), b"task_struct");
        assert_eq!(essential(b"task_struct"), b"task_struct");
        assert_eq!(essential(b"___x"), b"");
    }

    #[test]
    fn a_struct_keeps_only_the_member_walked_to_with_its_offset() {
        // [1] int "int"; [2] struct "s" { int a @0; int b @32; } (8 bytes); [3] ptr -> [2].
        let strings = b"\0int\0s\0a\0b\0";
        let kernel = blob(
            &[
                1,
                1 << 24,
                4,
                32, // int, 32 bits
                5,
                (4 << 24) | 2,
                8,
                7,
                1,
                0,
                9,
                1,
                32, // struct s, 2 members
                0,
                2 << 24,
                2, // ptr to s
            ],
            strings,
        );
        let raw = RawBtf::index(&kernel).expect("index");
        assert_eq!(raw.type_count(), 4);
        let mut sel = Selection {
            kernel: &raw,
            keep: vec![Keep::No; raw.type_count()],
            members: Vec::new(),
            searched: vec![false; raw.type_count()],
            touched: Vec::new(),
        };
        sel.need(3).expect("need");
        walk(&mut sel, 2, &[Step::Member(b"b".to_vec())]).expect("walk");
        let out = write(&raw, &sel.keep, sel.members).expect("write");
        let tailored = Btf::parse(&out).expect("valid BTF");
        let s = tailored.ty(2).expect("struct");
        assert_eq!(s.kind, Kind::Struct);
        assert_eq!(s.size_or_type, 8, "the struct keeps its size");
        let members = tailored.members(s);
        assert_eq!(members.len(), 1);
        assert_eq!(tailored.string(members[0].name_off), "b");
        assert_eq!(members[0].offset, 32);
        assert_eq!(
            tailored.ty(3).map(|t| (t.kind, t.size_or_type)),
            Some((Kind::Ptr, 2))
        );
        // Garbage and truncation are errors, not panics.
        assert!(RawBtf::index(&kernel[..kernel.len() - 20]).is_err());
        assert!(RawBtf::index(b"\x9f\xeb\x01\x00").is_err());
    }
}

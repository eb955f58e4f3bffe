//! Renders raw bytes as `field=value` text through BTF: ring buffer records and map keys/values.
//!
//! Integers print in decimal (signed per their BTF encoding), char arrays as strings, nested structs as
//! `outer.inner=…`, other arrays as `[a,b,c]`. Data shorter than its type prints `?` for the missing
//! parts; nothing here panics on bad BTF or short data.
//!
//! The same walk renders JSON ([`Decoder::json`]): `"name":value` members, nested structs as objects,
//! char arrays and enumerator names as strings, pointers as `"0x…"` strings, missing data as `null`.

use std::cell::Cell;
use std::fmt::Write as _;

use crate::btf::{Btf, Kind, Type};

/// Deepest type nesting rendered before falling back to `…`.
const MAX_DEPTH: u32 = 12;
/// Most array elements rendered before `,...`.
const MAX_ELEMS: u64 = 256;
/// Most values rendered per record: bounds the work a malformed (e.g. self-nesting) type can cause.
const MAX_NODES: u32 = 8192;
/// `BTF_INT_SIGNED`.
const INT_SIGNED: u8 = 1;
/// `BTF_INT_CHAR`.
const INT_CHAR: u8 = 2;
/// `BTF_INT_BOOL`.
const INT_BOOL: u8 = 4;

/// Appends `bytes` as lower-case hex.
pub fn write_hex(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        for nibble in [b >> 4, b & 15] {
            out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('?'));
        }
    }
}

/// Appends `s` unchanged when it is a plain token, else quoted with C-style escapes.
///
/// Quoting applies to empty strings and strings with spaces, quotes, `=`, backslashes or bytes outside
/// printable ASCII, so every `field=value` token stays one whitespace-free word or one quoted string.
pub fn write_string(out: &mut String, s: &[u8]) {
    let plain = !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'=' | b'\\'));
    if plain {
        // Char by char: short strings, and a call of musl's memcpy per copy costs more (x86_64).
        out.extend(s.iter().map(|&b| b as char));
        return;
    }
    out.push('"');
    for &b in s {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b' '..=b'~' => out.push(b as char),
            _ => {
                out.push_str("\\x");
                write_hex(out, &[b]);
            }
        }
    }
    out.push('"');
}

/// Appends `s` as a JSON string: UTF-8 passes through, control characters are escaped, and each byte
/// that is not UTF-8 becomes the code point of the same value (`\u00ff`), so nothing is lost or rejected.
pub fn write_json_string(out: &mut String, s: &[u8]) {
    out.push('"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if u32::from(c) < 0x20 || c == '\u{7f}' => json_escape(out, c as u8),
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            json_escape(out, b);
        }
    }
    out.push('"');
}

/// Appends `\u00XX` for one byte.
fn json_escape(out: &mut String, b: u8) {
    out.push_str("\\u00");
    write_hex(out, &[b]);
}

/// An integer type's width and signedness, when `ty` (beneath typedefs) is a plain byte-aligned integer.
pub fn integer_type(btf: &Btf, ty: u32) -> Option<(usize, bool)> {
    let t = btf.ty(btf.resolve(ty))?;
    match t.kind {
        Kind::Int {
            encoding,
            bit_offset: 0,
            bits,
        } if encoding & INT_BOOL == 0
            && matches!(t.size_or_type, 1 | 2 | 4 | 8)
            && u32::from(bits) == t.size_or_type * 8 =>
        {
            Some((t.size_or_type as usize, encoding & INT_SIGNED != 0))
        }
        _ => None,
    }
}

/// Reads an unsigned integer of 1..=8 bytes in the given byte order.
pub fn read_uint(bytes: &[u8], big_endian: bool) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    let fold = |acc: u64, &b: &u8| acc << 8 | u64::from(b);
    Some(if big_endian {
        bytes.iter().fold(0, fold)
    } else {
        bytes.iter().rev().fold(0, fold)
    })
}

/// Sign-extends the low `bits` bits of `v`.
pub fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits == 0 || bits >= 64 {
        return v as i64;
    }
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Extracts `nbits` bits starting at bit `bit_off` of `bytes` (bit numbering per byte order).
fn extract_bits(bytes: &[u8], bit_off: u64, nbits: u32, big_endian: bool) -> Option<u64> {
    if nbits == 0 || nbits > 64 {
        return None;
    }
    let mut v = 0u64;
    for i in 0..u64::from(nbits) {
        let k = bit_off.checked_add(i)?;
        let byte = *bytes.get(usize::try_from(k / 8).ok()?)?;
        if big_endian {
            v = v << 1 | u64::from((byte >> (7 - k % 8)) & 1);
        } else {
            v |= u64::from((byte >> (k % 8)) & 1) << i;
        }
    }
    Some(v)
}

/// Renders bytes through one object's BTF.
pub struct Decoder<'a> {
    btf: &'a Btf,
    /// JSON instead of `field=value` text.
    json: bool,
    /// Values left to render in the current record.
    budget: Cell<u32>,
    /// Kernel symbol of an address, for [`KSYM_TYPE`] values (the loader reads /proc/kallsyms).
    ksym: Option<&'a dyn Fn(u64) -> Option<String>>,
    /// Names of [`PROBE_TYPE`] values (attach cookies).
    probe_names: &'a [String],
}

impl<'a> Decoder<'a> {
    /// A decoder for data described by `btf` (and in its byte order).
    pub fn new(btf: &'a Btf) -> Self {
        Decoder {
            btf,
            json: false,
            budget: Cell::new(MAX_NODES),
            ksym: None,
            probe_names: &[],
        }
    }

    /// A decoder that renders JSON members and values instead of text.
    pub fn json(btf: &'a Btf) -> Self {
        Decoder {
            json: true,
            ..Decoder::new(btf)
        }
    }

    /// Appends a member or label name: `name=` as text, `"name":` as JSON.
    fn name(&self, out: &mut String, prefix: &str, name: &str) {
        if self.json {
            // Names come from the object's BTF: escaped like any string, so JSON stays JSON.
            write_json_string(out, name.as_bytes());
            out.push(':');
        } else {
            out.push_str(prefix);
            out.push_str(name);
            out.push('=');
        }
    }

    /// Appends the mark of data that is missing or beyond the rendering limits.
    fn missing(&self, out: &mut String) {
        out.push_str(if self.json { "null" } else { "?" });
    }

    /// Appends a string value: quoted only when needed as text, always quoted as JSON.
    fn string(&self, out: &mut String, s: &[u8]) {
        if self.json {
            write_json_string(out, s)
        } else {
            write_string(out, s)
        }
    }

    /// Appends bytes as `0x…` (a string in JSON).
    fn hex(&self, out: &mut String, bytes: &[u8]) {
        if self.json {
            out.push('"');
        }
        hex_value(out, bytes);
        if self.json {
            out.push('"');
        }
    }

    /// Appends `field=value` tokens for `bytes` of type `ty` (space-separated, and separated from what
    /// `out` already holds); a value that is not a struct becomes `label=value`. As JSON: `"field":value`
    /// members separated by commas (the caller writes the braces).
    pub fn record(&self, out: &mut String, ty: u32, bytes: &[u8], label: &str) {
        self.budget.set(MAX_NODES);
        let sep = if self.json { ',' } else { ' ' };
        let id = self.btf.resolve(ty);
        match self.btf.ty(id) {
            Some(t) if matches!(t.kind, Kind::Struct | Kind::Union) => {
                let mut prefix = String::new();
                self.members(out, &mut prefix, t, bytes, sep, 0);
            }
            _ => {
                if !out.is_empty() && !out.ends_with('{') {
                    out.push(sep);
                }
                self.name(out, "", label);
                self.value(out, ty, bytes, 0);
            }
        }
    }

    /// Appends `sep name=value` for every member; nested structs extend `prefix` with `name.`.
    fn members(
        &self,
        out: &mut String,
        prefix: &mut String,
        t: &Type,
        bytes: &[u8],
        sep: char,
        depth: u32,
    ) {
        for m in self.btf.members(t) {
            if !self.spend() {
                if !self.json {
                    out.push_str(" ...");
                }
                return;
            }
            let (bit_off, bitfield) = if t.kind_flag {
                (u64::from(m.offset & 0x00ff_ffff), m.offset >> 24)
            } else {
                (u64::from(m.offset), 0)
            };
            let name = self.btf.string(m.name_off);
            let id = self.btf.resolve(m.ty);
            let Some(mt) = self.btf.ty(id) else { continue };
            let byte_off = usize::try_from(bit_off / 8).unwrap_or(usize::MAX);
            let is_aggregate = matches!(mt.kind, Kind::Struct | Kind::Union);
            let flatten = name.is_empty() || (sep == ' ' && !self.json);
            if is_aggregate && bitfield == 0 && flatten && depth < MAX_DEPTH {
                // Anonymous members flatten into the parent; named ones extend the prefix (top level only).
                let inner = bytes.get(byte_off..).unwrap_or(&[]);
                let len = prefix.len();
                if !name.is_empty() {
                    prefix.push_str(name);
                    prefix.push('.');
                }
                self.members(out, prefix, mt, inner, sep, depth + 1);
                prefix.truncate(len);
                continue;
            }
            // The first token of a line or of a `{...}` needs no separator.
            if !out.is_empty() && !out.ends_with('{') {
                out.push(sep);
            }
            self.name(out, prefix, name);
            match (mt.kind, bitfield) {
                (Kind::Int { encoding, bits, .. }, b) if b > 0 || bit_off % 8 != 0 => {
                    let bits = if b > 0 { b } else { u32::from(bits) };
                    self.bits(out, bytes, bit_off, bits, encoding & INT_SIGNED != 0);
                }
                (Kind::Enum | Kind::Enum64, b) if b > 0 => {
                    match extract_bits(bytes, bit_off, b, self.btf.is_big_endian()) {
                        Some(v) => self.enum_name(out, mt, v, b),
                        None => self.missing(out),
                    }
                }
                _ => {
                    let size = self.btf.size_of(id).unwrap_or(0);
                    match slice(bytes, byte_off, size) {
                        Some(field) => self.value(out, m.ty, field, depth + 1),
                        None => self.missing(out),
                    }
                }
            }
        }
    }

    fn bits(&self, out: &mut String, bytes: &[u8], bit_off: u64, bits: u32, signed: bool) {
        match extract_bits(bytes, bit_off, bits, self.btf.is_big_endian()) {
            Some(v) if signed => {
                let _ = write!(out, "{}", sign_extend(v, bits));
            }
            Some(v) => {
                let _ = write!(out, "{v}");
            }
            None => self.missing(out),
        }
    }

    fn enum_name(&self, out: &mut String, t: &Type, v: u64, bits: u32) {
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        match self
            .btf
            .enumerators(t)
            .iter()
            .find(|e| e.value & mask == v & mask)
        {
            Some(e) => {
                let name = self.btf.string(e.name_off);
                let shown = name.strip_prefix(ENUM_PREFIX).unwrap_or(name);
                self.string(out, shown.as_bytes())
            }
            None if t.kind_flag => {
                let _ = write!(out, "{}", sign_extend(v, bits));
            }
            None => {
                let _ = write!(out, "{v}");
            }
        }
    }

    /// Appends one value of type `ty` held in `bytes`, structs rendered as `{a=1,b=2}`.
    pub fn value_text(&self, out: &mut String, ty: u32, bytes: &[u8]) {
        self.budget.set(MAX_NODES);
        self.value(out, ty, bytes, 0);
    }

    /// Takes one unit of the rendering budget; false once it is spent.
    fn spend(&self) -> bool {
        let left = self.budget.get();
        self.budget.set(left.saturating_sub(1));
        left > 0
    }

    /// Appends one value of type `ty` held exactly in `bytes`.
    fn value(&self, out: &mut String, ty: u32, bytes: &[u8], depth: u32) {
        if let Some(special) = self.special(ty) {
            let mut text = String::with_capacity(40);
            match (special, bytes.len()) {
                (INET_ADDR_TYPE, 16) => {
                    let mut addr = [0u8; 16];
                    addr.copy_from_slice(bytes);
                    write_inet_addr(&mut text, &addr);
                }
                (KSYM_TYPE, 8) => {
                    let addr = read_uint(bytes, self.btf.is_big_endian()).unwrap_or(0);
                    match self.ksym.and_then(|f| f(addr)) {
                        Some(name) => text.push_str(&name),
                        None => return self.hex(out, bytes),
                    }
                }
                (PROBE_TYPE, 8) => {
                    let cookie = read_uint(bytes, self.btf.is_big_endian()).unwrap_or(0);
                    let name = usize::try_from(cookie)
                        .ok()
                        .and_then(|c| c.checked_sub(1))
                        .and_then(|i| self.probe_names.get(i));
                    match name {
                        Some(name) => text.push_str(name),
                        None => return self.hex(out, bytes),
                    }
                }
                (DEV_TYPE, 4) => {
                    let dev = read_uint(bytes, self.btf.is_big_endian()).unwrap_or(0);
                    push_decimal(&mut text, dev >> 20);
                    text.push(':');
                    push_decimal(&mut text, dev & 0xfffff);
                }
                _ => return self.hex(out, bytes),
            }
            return self.string(out, text.as_bytes());
        }
        let big = self.btf.is_big_endian();
        let id = self.btf.resolve(ty);
        let Some(t) = self.btf.ty(id) else {
            return self.hex(out, bytes);
        };
        if depth > MAX_DEPTH || !self.spend() {
            out.push_str(if self.json { "null" } else { "..." });
            return;
        }
        match t.kind {
            Kind::Int {
                encoding,
                bit_offset,
                bits,
            } if bytes.len() <= 8 => {
                let Some(raw) = read_uint(bytes, big) else {
                    return self.missing(out);
                };
                let bits = u32::from(bits).min(64);
                let v = if bits == 0 || bits >= 64 {
                    raw >> bit_offset.min(63)
                } else {
                    (raw >> bit_offset.min(63)) & ((1u64 << bits) - 1)
                };
                if encoding & INT_BOOL != 0 {
                    out.push_str(if v != 0 { "true" } else { "false" });
                } else if encoding & INT_SIGNED != 0 {
                    let v = sign_extend(v, bits);
                    if v < 0 {
                        out.push('-');
                    }
                    push_decimal(out, v.unsigned_abs());
                } else {
                    push_decimal(out, v);
                }
            }
            Kind::Enum | Kind::Enum64 if !bytes.is_empty() && bytes.len() <= 8 => {
                let v = read_uint(bytes, big).unwrap_or(0);
                self.enum_name(out, t, v, (bytes.len() * 8) as u32);
            }
            Kind::Ptr => self.hex(out, bytes),
            Kind::Float if bytes.len() == 4 || bytes.len() == 8 => {
                let raw = read_uint(bytes, big).unwrap_or(0);
                let v = if bytes.len() == 4 {
                    f64::from(f32::from_bits(raw as u32))
                } else {
                    f64::from_bits(raw)
                };
                if self.json && (!v.is_finite() || v.abs() >= 1e15) {
                    // JSON has no NaN or infinity; huge values would print as a bit pattern.
                    out.push_str("null");
                } else {
                    write_float(out, v);
                }
            }
            Kind::Array { elem, nelems } => self.array(out, elem, nelems, bytes, depth),
            Kind::Struct | Kind::Union => {
                out.push('{');
                let mut prefix = String::new();
                self.members(out, &mut prefix, t, bytes, ',', depth + 1);
                out.push('}');
            }
            _ => self.hex(out, bytes),
        }
    }

    fn array(&self, out: &mut String, elem: u32, nelems: u32, bytes: &[u8], depth: u32) {
        if self.is_char(elem) {
            let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
            return self.string(out, text);
        }
        let size = self.btf.size_of(elem).unwrap_or(0);
        out.push('[');
        if size > 0 {
            for i in 0..u64::from(nelems) {
                if i > 0 {
                    out.push(',');
                }
                if i >= MAX_ELEMS {
                    self.missing(out);
                    break;
                }
                let off = i
                    .checked_mul(size)
                    .and_then(|o| usize::try_from(o).ok())
                    .unwrap_or(usize::MAX);
                match slice(bytes, off, size) {
                    Some(e) => self.value(out, elem, e, depth + 1),
                    None => self.missing(out),
                }
            }
        }
        out.push(']');
    }

    /// The same decoder printing [`KSYM_TYPE`] values as the kernel symbols `ksym` names.
    pub fn with_ksym(self, ksym: &'a dyn Fn(u64) -> Option<String>) -> Self {
        Decoder {
            ksym: Some(ksym),
            ..self
        }
    }

    /// The same decoder printing [`PROBE_TYPE`] value `i` as `names[i - 1]`.
    pub fn with_probe_names(self, probe_names: &'a [String]) -> Self {
        Decoder {
            probe_names,
            ..self
        }
    }

    /// Which of the typedefs printed as text ([`INET_ADDR_TYPE`], [`DEV_TYPE`]) `ty` is, through
    /// qualifiers and other typedefs.
    fn special(&self, mut ty: u32) -> Option<&'static str> {
        for _ in 0..8 {
            let t = self.btf.ty(ty)?;
            match t.kind {
                Kind::Typedef => {
                    let name = self.btf.string(t.name_off);
                    if let Some(s) = [INET_ADDR_TYPE, DEV_TYPE, KSYM_TYPE, PROBE_TYPE]
                        .into_iter()
                        .find(|s| *s == name)
                    {
                        return Some(s);
                    }
                    ty = t.size_or_type;
                }
                Kind::Const | Kind::Volatile | Kind::Restrict => ty = t.size_or_type,
                _ => return None,
            }
        }
        None
    }

    /// Whether `ty` is a C character type (`char`, `signed char`, `unsigned char`), not through a typedef:
    /// `__u8 addr[16]` stays a number list while `char comm[16]` becomes a string.
    fn is_char(&self, ty: u32) -> bool {
        let id = self.btf.strip_qualifiers(ty);
        match self.btf.ty(id) {
            Some(t) => match t.kind {
                Kind::Int { encoding, .. } if t.size_or_type == 1 => {
                    encoding & INT_CHAR != 0 || self.btf.string(t.name_off).ends_with("char")
                }
                _ => false,
            },
            None => false,
        }
    }
}

/// Most fields a [`TextPlan`] covers: far below [`MAX_NODES`] even with its longest arrays, so the
/// decoder's budget never runs out on a planned record and both renderings agree.
const PLAN_MAX_FIELDS: usize = 64;
/// Longest non-string array a planned field renders through the decoder.
const PLAN_MAX_ELEMS: u32 = 64;
/// Deepest struct nesting a plan flattens.
const PLAN_MAX_DEPTH: u32 = 4;

/// How one planned field prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// A whole unsigned integer of the field's size.
    Unsigned,
    /// A whole signed integer of the field's size.
    Signed,
    /// A `_Bool`.
    Bool,
    /// A char array, as a string up to its first NUL.
    Chars,
    /// Anything else the decoder renders without nesting (enums, pointers, floats, short arrays of
    /// scalars), through [`Decoder::value`] with this type id.
    Value(u32),
}

/// One `field=value` token of a planned record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlanField {
    /// `prefix.name=`.
    token: String,
    /// Byte offset in the record.
    off: usize,
    /// Byte size of the value.
    size: usize,
    how: How,
}

/// The text rendering of one record type worked out once from its BTF: the `field=value` tokens that
/// [`Decoder::record`] writes for it, as byte offsets and how to print each, so that an event is
/// printed without walking the BTF. [`TextPlan::new`] declines records it does not cover exactly
/// (bitfields, members at bit offsets, deep or large types, unknown types): those keep the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPlan {
    fields: Vec<PlanField>,
}

impl TextPlan {
    /// The plan of record type `ty`, if it is a struct or union this plan covers.
    pub fn new(btf: &Btf, ty: u32) -> Option<TextPlan> {
        let t = btf.ty(btf.resolve(ty))?;
        if !matches!(t.kind, Kind::Struct | Kind::Union) {
            return None;
        }
        let mut plan = TextPlan { fields: Vec::new() };
        let mut prefix = String::new();
        plan.walk(btf, t, 0, &mut prefix, 0)?;
        Some(plan)
    }

    /// Number of `field=value` tokens a record prints.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the record prints no token.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Mirrors [`Decoder::members`] in text mode: every aggregate member flattens (named ones extend
    /// the prefix), every other member becomes a field.
    fn walk(
        &mut self,
        btf: &Btf,
        t: &Type,
        base: usize,
        prefix: &mut String,
        depth: u32,
    ) -> Option<()> {
        if depth > PLAN_MAX_DEPTH {
            return None;
        }
        for m in btf.members(t) {
            if t.kind_flag && m.offset >> 24 != 0 || m.offset % 8 != 0 {
                return None; // a bitfield, or a member at a bit offset
            }
            let off = base.checked_add(usize::try_from(m.offset / 8).ok()?)?;
            let name = btf.string(m.name_off);
            let id = btf.resolve(m.ty);
            let mt = btf.ty(id)?;
            if matches!(mt.kind, Kind::Struct | Kind::Union) {
                let len = prefix.len();
                if !name.is_empty() {
                    prefix.push_str(name);
                    prefix.push('.');
                }
                self.walk(btf, mt, off, prefix, depth + 1)?;
                prefix.truncate(len);
                continue;
            }
            if name.is_empty() || self.fields.len() == PLAN_MAX_FIELDS {
                return None;
            }
            let size = usize::try_from(btf.size_of(id)?).ok()?;
            let how = match mt.kind {
                _ if Decoder::new(btf).special(m.ty).is_some() => How::Value(m.ty),
                // A zero-sized int reads as missing in the decoder: the plan declines it.
                Kind::Int {
                    encoding,
                    bit_offset: 0,
                    bits,
                } if (1..=8).contains(&size) && usize::from(bits) == size * 8 => {
                    if encoding & INT_BOOL != 0 {
                        How::Bool
                    } else if encoding & INT_SIGNED != 0 {
                        How::Signed
                    } else {
                        How::Unsigned
                    }
                }
                Kind::Int { .. } => return None,
                Kind::Array { elem, nelems } => {
                    let decoder = Decoder::new(btf);
                    if decoder.is_char(elem) {
                        How::Chars
                    } else {
                        let e = btf.ty(btf.resolve(elem))?;
                        let scalar =
                            !matches!(e.kind, Kind::Struct | Kind::Union | Kind::Array { .. });
                        if !scalar || nelems > PLAN_MAX_ELEMS {
                            return None;
                        }
                        How::Value(m.ty)
                    }
                }
                Kind::Enum | Kind::Enum64 | Kind::Ptr | Kind::Float => How::Value(m.ty),
                _ => return None,
            };
            self.fields.push(PlanField {
                token: format!("{prefix}{name}="),
                off,
                size,
                how,
            });
        }
        Some(())
    }

    /// Appends the text of field `i` of the record in `bytes` (`name=value`, no separator), exactly as
    /// [`Decoder::record`] renders it; `decoder` is over the BTF the plan was made from.
    pub fn field(&self, decoder: &Decoder<'_>, i: usize, bytes: &[u8], out: &mut String) {
        let Some(f) = self.fields.get(i) else { return };
        out.push_str(&f.token);
        let Some(value) = slice(bytes, f.off, f.size as u64) else {
            return decoder.missing(out);
        };
        let big = decoder.btf.is_big_endian();
        match f.how {
            How::Unsigned => push_decimal(out, read_uint(value, big).unwrap_or(0)),
            How::Signed => {
                let v = sign_extend(read_uint(value, big).unwrap_or(0), 8 * f.size as u32);
                if v < 0 {
                    out.push('-');
                }
                push_decimal(out, v.unsigned_abs());
            }
            How::Bool => {
                let v = read_uint(value, big).unwrap_or(0);
                out.push_str(if v != 0 { "true" } else { "false" });
            }
            How::Chars => {
                let text = value.split(|&b| b == 0).next().unwrap_or_default();
                decoder.string(out, text);
            }
            How::Value(ty) => {
                decoder.budget.set(MAX_NODES);
                decoder.value(out, ty, value, 1);
            }
        }
    }
}

/// The unit label of a histogram's header, from its map's name: a `_ns`, `_us` or `_ms` suffix (or the
/// bare word) names the unit as BCC does (`nsecs`, `usecs`, `msecs`); anything else is a `value`.
pub fn hist_unit_label(map: &str) -> &'static str {
    let units = [("ns", "nsecs"), ("us", "usecs"), ("ms", "msecs")];
    for (suffix, label) in units {
        if map == suffix || map == label || map.ends_with(&format!("_{suffix}")) {
            return label;
        }
    }
    "value"
}

/// The typedef of a 16-byte IPv6 address (IPv4 as `::ffff:a.b.c.d`, RFC 4291) that prints as text:
/// `ep_inet_addr` in ebpf_pack.h.
pub const INET_ADDR_TYPE: &str = "ep_inet_addr";

/// Prefix of an enumerator that prints without it: probes name display enums `EP__CLOSE` so that
/// `CLOSE` cannot clash with the kernel's own enumerators in vmlinux.h.
pub const ENUM_PREFIX: &str = "EP__";

/// The typedef of a kernel address that prints as its symbol where the loader can read
/// /proc/kallsyms: `ep_ksym_t` in ebpf_pack.h.
pub const KSYM_TYPE: &str = "ep_ksym_t";

/// The typedef of a BPF attach cookie that prints as the function its attach point is (funccount's
/// uprobes: ebpf-run numbers them 1, 2, ...): `ep_probe_t` in ebpf_pack.h.
pub const PROBE_TYPE: &str = "ep_probe_t";

/// The typedef of a kernel stack id (`bpf_get_stackid` into the object's stack-trace map) whose row
/// prints as a folded stack: `ep_kstack_t` in ebpf_pack.h.
pub const KSTACK_TYPE: &str = "ep_kstack_t";

/// The typedef of a user stack id (`bpf_get_stackid(..., BPF_F_USER_STACK)`): `ep_ustack_t`.
pub const USTACK_TYPE: &str = "ep_ustack_t";

/// The typedef of a block device number (`major << 20 | minor`) that prints as `MAJOR:MINOR`:
/// `ep_dev_t` in ebpf_pack.h.
pub const DEV_TYPE: &str = "ep_dev_t";

/// Appends `addr` as text: dotted quad for an IPv4-mapped address, else RFC 5952 IPv6 (lower-case
/// hex, the longest run of two or more zero groups as `::`).
pub fn write_inet_addr(out: &mut String, addr: &[u8; 16]) {
    if addr[..10].iter().all(|&b| b == 0) && addr[10] == 0xff && addr[11] == 0xff {
        for (i, b) in addr[12..].iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            push_decimal(out, u64::from(*b));
        }
        return;
    }
    let groups: Vec<u16> = addr
        .chunks_exact(2)
        .map(|g| g.iter().fold(0u16, |group, &b| group << 8 | u16::from(b)))
        .collect();
    // The longest run of zero groups (first one on a tie), if at least two long.
    let (mut best, mut run_start, mut run) = ((0, 0), 0, 0);
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            if run == 0 {
                run_start = i;
            }
            run += 1;
            if run > best.1 {
                best = (run_start, run);
            }
        } else {
            run = 0;
        }
    }
    let hex = |out: &mut String, g: u16| {
        let mut started = false;
        for shift in [12, 8, 4, 0] {
            let d = (g >> shift) & 0xf;
            if d != 0 || started || shift == 0 {
                out.push(char::from_digit(u32::from(d), 16).unwrap_or('?'));
                started = true;
            }
        }
    };
    let mut i = 0;
    while i < 8 {
        if best.1 >= 2 && i == best.0 {
            out.push_str("::");
            i += best.1;
            continue;
        }
        if i > 0 && !out.ends_with(':') {
            out.push(':');
        }
        hex(out, groups.get(i).copied().unwrap_or(0));
        i += 1;
    }
}

/// Appends `v` in decimal: the hot path of every event line, cheaper than `core::fmt`.
pub fn push_decimal(out: &mut String, mut v: u64) {
    // u64::MAX has 20 digits; they are filled from the right.
    let mut digits = [0u8; 20];
    let mut used = 0;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        used += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let first = digits.len() - used;
    out.extend(digits.iter().skip(first).map(|&d| char::from(d)));
}

/// Appends a float with up to six decimals (`-1.5`, `0.000001`), by integer arithmetic: core's float
/// formatting costs more flash than the rare float field is worth. Huge magnitudes print their bits.
fn write_float(out: &mut String, v: f64) {
    if v.is_nan() {
        return out.push_str("nan");
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    let a = v.abs();
    if a.is_infinite() {
        return out.push_str("inf");
    }
    if a >= 1e15 {
        let _ = write!(out, "0x{:x}", v.to_bits());
        return;
    }
    // Exact for a < 1e15: the scaled value stays below 2^63.
    let micros = (a * 1e6 + 0.5) as u64;
    let _ = write!(out, "{}", micros / 1_000_000);
    let mut frac = micros % 1_000_000;
    if frac != 0 {
        out.push('.');
        let mut digits = 6;
        while frac.is_multiple_of(10) {
            frac /= 10;
            digits -= 1;
        }
        let _ = write!(out, "{frac:0digits$}");
    }
}

/// `bytes[off..off + len]`, if in bounds.
fn slice(bytes: &[u8], off: usize, len: u64) -> Option<&[u8]> {
    let len = usize::try_from(len).ok()?;
    bytes.get(off..off.checked_add(len)?)
}

/// Appends `0x` and the bytes in hex (memory order).
fn hex_value(out: &mut String, bytes: &[u8]) {
    out.push_str("0x");
    write_hex(out, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_addresses_print_as_text() {
        let text = |a: [u8; 16]| {
            let mut s = String::new();
            write_inet_addr(&mut s, &a);
            s
        };
        let mut v4 = [0u8; 16];
        v4[10..].copy_from_slice(&[0xff, 0xff, 127, 0, 0, 1]);
        assert_eq!(text(v4), "127.0.0.1");
        let mut lo6 = [0u8; 16];
        lo6[15] = 1;
        assert_eq!(text(lo6), "::1");
        assert_eq!(text([0; 16]), "::");
        let mut doc = [0u8; 16];
        doc[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        doc[15] = 1;
        assert_eq!(text(doc), "2001:db8::1");
        let mut one_zero = [0x11u8; 16];
        one_zero[2] = 0;
        one_zero[3] = 0;
        assert_eq!(text(one_zero), "1111:0:1111:1111:1111:1111:1111:1111");
        let mut tail = [0u8; 16];
        tail[0] = 0xfe;
        tail[1] = 0x80;
        assert_eq!(text(tail), "fe80::");
    }

    #[test]
    fn decimals_cover_the_whole_range() {
        for v in [0, 7, 10, 4242, u64::from(u32::MAX), u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }

    #[test]
    fn strings_are_quoted_only_when_needed() {
        let cases: [(&[u8], &str); 7] = [
            (b"cat", "cat"),
            (b"/tmp/x", "/tmp/x"),
            (b"", "\"\""),
            (b"a b", "\"a b\""),
            (b"k=v", "\"k=v\""),
            (b"say \"hi\"\n", "\"say \\\"hi\\\"\\n\""),
            (b"\x01\xff", "\"\\x01\\xff\""),
        ];
        for (input, want) in cases {
            let mut out = String::new();
            write_string(&mut out, input);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn json_strings_escape_controls_and_keep_every_byte() {
        let cases: [(&[u8], &str); 5] = [
            (b"cat", "\"cat\""),
            (b"", "\"\""),
            (b"a\"b\\c\n", "\"a\\\"b\\\\c\\n\""),
            ("é\x01".as_bytes(), "\"é\\u0001\""),
            (b"\xff/x", "\"\\u00ff/x\""),
        ];
        for (input, want) in cases {
            let mut out = String::new();
            write_json_string(&mut out, input);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn integers_read_in_both_byte_orders_and_sign_extend() {
        assert_eq!(read_uint(&[1, 2], false), Some(0x0201));
        assert_eq!(read_uint(&[1, 2], true), Some(0x0102));
        assert_eq!(read_uint(&[], true), None);
        assert_eq!(read_uint(&[0; 9], true), None);
        assert_eq!(sign_extend(0xff, 8), -1);
        assert_eq!(sign_extend(0x7f, 8), 127);
        assert_eq!(sign_extend(u64::MAX, 64), -1);
    }

    #[test]
    fn floats_print_with_up_to_six_decimals() {
        for (v, want) in [
            (1.5, "1.5"),
            (-2.0, "-2"),
            (0.000001, "0.000001"),
            (123.456789, "123.456789"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            let mut out = String::new();
            write_float(&mut out, v);
            assert_eq!(out, want, "{v}");
        }
    }

    #[test]
    fn bitfields_extract_per_byte_order() {
        // LE: a:3 = 5 at bit 0, b:5 = 17 at bit 3 -> byte 0b10001_101.
        let le = [0b1000_1101u8];
        assert_eq!(extract_bits(&le, 0, 3, false), Some(5));
        assert_eq!(extract_bits(&le, 3, 5, false), Some(17));
        // BE: a:3 = 5 in the top bits, b:5 = 17 below -> 0b101_10001.
        let be = [0b1011_0001u8];
        assert_eq!(extract_bits(&be, 0, 3, true), Some(5));
        assert_eq!(extract_bits(&be, 3, 5, true), Some(17));
        assert_eq!(extract_bits(&be, 6, 5, true), None);
    }
}

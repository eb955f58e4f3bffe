//! Reader tests on hand-built blobs: both byte orders, malformed and hostile input.

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
fn check_walks_types_without_keeping_them() {
    let words = [1, 1 << 24, 4, 32, 0, 2 << 24, 1];
    assert_eq!(check(&blob(true, &words, b"\0int\0")), Ok(2));
    assert_eq!(check(&blob(false, &words, b"\0int\0")), Ok(2));
    // Truncated INT tail, unknown kind 20, struct whose members run past the end.
    for bad in [
        &[1, 1 << 24, 4][..],
        &[0, 20 << 24, 0],
        &[0, (4 << 24) | 2, 8, 0, 0, 0],
    ] {
        assert!(check(&blob(false, bad, b"\0")).is_err(), "{bad:?}");
    }
    assert!(check(b"\x9f\xeb").is_err());
}

#[test]
fn self_nesting_structs_decode_in_bounded_time() {
    // 1: struct s { s a; s b; s c; } (impossible in C, possible in a malformed blob)
    let words = [1, (4 << 24) | 3, 4, 3, 1, 0, 3, 1, 0, 3, 1, 0];
    let btf = Btf::parse(&blob(false, &words, b"\0s\0a\0")).expect("parse");
    let mut out = String::new();
    crate::decode::Decoder::new(&btf).record(&mut out, 1, &[0; 4], "v");
    assert!(
        out.len() < 1 << 20,
        "output stays bounded: {} bytes",
        out.len()
    );
    assert!(
        out.ends_with("..."),
        "{}",
        &out[out.len().saturating_sub(40)..]
    );
}

#[test]
fn a_map_definition_gains_a_value_size_and_keeps_every_id() {
    // The shape clang gives `struct { __uint(type, 7); __uint(key_size, 4); } stackmap SEC(".maps");`
    // followed by a type after it (ids must not move):
    // 1 int, 2 __ARRAY_SIZE_TYPE__, 3 int[7], 4 ptr->3, 5 int[4], 6 ptr->5,
    // 7 struct { type: 4 @0, key_size: 6 @64 } (16 bytes), 8 VAR stackmap -> 7, 9 int "after".
    let strings = b"\0int\0__ARRAY_SIZE_TYPE__\0type\0key_size\0stackmap\0after\0";
    let s = |name: &str| {
        let at = strings
            .windows(name.len() + 1)
            .position(|w| &w[..name.len()] == name.as_bytes() && w[name.len()] == 0)
            .expect("string");
        at as u32
    };
    let words = [
        s("int"),
        1 << 24,
        4,
        (1 << 24) | 32,
        s("__ARRAY_SIZE_TYPE__"),
        1 << 24,
        4,
        32,
        0,
        3 << 24,
        0,
        1,
        2,
        7,
        0,
        2 << 24,
        3,
        0,
        3 << 24,
        0,
        1,
        2,
        4,
        0,
        2 << 24,
        5,
        0,
        (4 << 24) | 2,
        16,
        s("type"),
        4,
        0,
        s("key_size"),
        6,
        64,
        s("stackmap"),
        14 << 24,
        7,
        1,
        s("after"),
        1 << 24,
        8,
        (1 << 24) | 64,
    ];
    for big in [false, true] {
        let grown =
            add_map_value_size(&blob(big, &words, strings), "stackmap", 1016).expect("grown");
        let btf = Btf::parse(&grown).expect("parses");
        let defs = btf.map_defs();
        assert!(defs.is_empty(), "no .maps DATASEC in this blob");
        let body = btf.ty(7).expect("struct");
        let members = btf.members(body);
        assert_eq!(members.len(), 3);
        assert_eq!(btf.string(members[2].name_off), "value_size");
        assert_eq!(members[2].offset, 64, "shares the last member's offset");
        assert_eq!(btf.size_of(7), Some(16), "the struct keeps its size");
        let ptr = btf.ty(members[2].ty).expect("ptr");
        assert_eq!(ptr.kind, Kind::Ptr);
        assert_eq!(
            btf.ty(ptr.size_or_type).map(|t| t.kind),
            Some(Kind::Array {
                elem: 1,
                nelems: 1016
            })
        );
        assert_eq!(btf.type_name(9), "after", "later ids keep their types");
        assert_eq!(btf.size_of(9), Some(8));
        assert_eq!(
            btf.string(s("stackmap")),
            "stackmap",
            "string offsets keep their strings"
        );
        assert!(check(&grown).is_ok());
    }
    let plain = blob(false, &words, strings);
    assert_eq!(
        add_map_value_size(&plain, "nope", 8),
        Err(BtfError("no such map variable"))
    );
}

//! Event and map-value decoding: a random BTF (first part), a type id, and a random record, rendered as
//! text and as JSON, and through the text plan the loader precomputes for ring-buffer records, which
//! must print exactly what the decoder prints. Layout: u32 LE BTF length, BTF, u32 LE type id, record.
#![no_main]

use ebpf_pack_object::btf::Btf;
use ebpf_pack_object::decode::{Decoder, TextPlan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(len) = data
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    else {
        return;
    };
    let Some(blob) = data.get(4..).and_then(|d| d.get(..len)) else {
        return;
    };
    let rest = &data[4 + len..];
    let Some(ty) = rest
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return;
    };
    let record = &rest[4..];
    let Ok(btf) = Btf::parse(blob) else {
        return;
    };
    let text = Decoder::new(&btf);
    let mut decoded = String::new();
    text.record(&mut decoded, ty, record, "value");
    let mut value = String::new();
    text.value_text(&mut value, ty, record);
    let mut json = String::from("{");
    Decoder::json(&btf).record(&mut json, ty, record, "value");
    json.push('}');
    serde_json::from_str::<serde_json::Value>(&json).expect("the JSON decoder writes JSON");
    if let Some(plan) = TextPlan::new(&btf, ty) {
        let mut planned = String::new();
        for i in 0..plan.len() {
            if i > 0 {
                planned.push(' ');
            }
            plan.field(&text, i, record, &mut planned);
        }
        assert_eq!(
            planned, decoded,
            "the text plan prints what the decoder prints"
        );
    }
});

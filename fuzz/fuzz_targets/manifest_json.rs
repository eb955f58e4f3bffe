//! The loader's own JSON reader (manifest.json on the board), differential against serde_json: the
//! same documents accepted and refused, the same values. Two differences are by design: nesting past
//! the reader's MAX_DEPTH is refused (serde_json allows 128) — in the text, also inside a value a
//! repeated key replaces — and numbers are kept as text, so one past f64's range is accepted where
//! serde_json refuses it.
#![no_main]

use ebpf_pack_manifest::json::{Json, MAX_DEPTH};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Our value as serde_json would hold it (objects keep the last of repeated keys, as serde_json does).
fn to_serde(v: &Json) -> Option<Value> {
    Some(match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(text) => serde_json::from_str::<Value>(text).ok()?,
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(to_serde).collect::<Option<_>>()?),
        Json::Object(members) => {
            let mut map = serde_json::Map::new();
            for (k, v) in members {
                map.insert(k.clone(), to_serde(v)?);
            }
            Value::Object(map)
        }
    })
}

/// Deepest nesting of arrays and objects in the document's text (brackets inside strings not
/// counted): serde_json's value cannot tell, as it keeps only the last of repeated keys.
fn text_depth(data: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in data {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fuzz_target!(|data: &[u8]| {
    let ours = Json::parse(data);
    let theirs = serde_json::from_slice::<Value>(data);
    match (ours, theirs) {
        (Ok(o), Ok(t)) => assert_eq!(to_serde(&o), Some(t), "same value"),
        (Ok(o), Err(e)) => {
            assert!(
                e.to_string().contains("number out of range") && to_serde(&o).is_none(),
                "accepted what serde_json refuses: {e}"
            );
        }
        (Err(e), Ok(_)) => assert!(
            text_depth(data) > MAX_DEPTH,
            "refused what serde_json accepts: {e}"
        ),
        (Err(_), Err(_)) => {}
    }
});

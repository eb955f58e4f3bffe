//! The loader's own JSON reader (manifest.json on the board), differential against serde_json: the
//! same documents accepted and refused, the same values. Two differences are by design: nesting past
//! the reader's MAX_DEPTH is refused (serde_json allows 128), and numbers are kept as text, so one past
//! f64's range is accepted where serde_json refuses it.
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

/// Nesting depth of a serde value (a scalar is 0).
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
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
        (Err(e), Ok(t)) => assert!(
            depth(&t) > MAX_DEPTH,
            "refused what serde_json accepts: {e}"
        ),
        (Err(_), Err(_)) => {}
    }
});

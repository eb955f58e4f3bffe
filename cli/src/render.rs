//! Rendering ebpf-run's JSON lines on the host: one aligned table per record type (a probe's map),
//! with a header row of its field names, like BCC's tools print. Pure: lines in, lines out.
//!
//! ebpf-run writes one flat JSON object per line: `probe` and `map`, then the record's fields in the
//! order of its BTF struct (events), `key` and `value` (map dumps), or `printed` and `lost` (a ring
//! buffer's summary at exit). Field order is kept as written.

use std::fmt::Write as _;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// A JSON object with its keys in the order they were written.
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    fields.push((k, v));
                }
                Ok(Ordered(fields))
            }
        }
        d.deserialize_map(V)
    }
}

/// The record type a line belongs to and the columns it had when first seen.
#[derive(Debug, Clone)]
struct Table {
    probe: String,
    map: String,
    columns: Vec<String>,
    widths: Vec<usize>,
}

/// Turns JSON lines into text lines, remembering column widths per record type.
#[derive(Debug, Default)]
pub struct Renderer {
    tables: Vec<Table>,
    /// Index of the table of the last printed row, to repeat a header when the type changes.
    last: Option<usize>,
}

/// Width of the first column (the probe's name).
const PROBE_WIDTH: usize = 12;

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

impl Renderer {
    /// A renderer with no tables yet.
    pub fn new() -> Renderer {
        Renderer::default()
    }

    /// The text lines for one line of ebpf-run's output. Lines that are not JSON objects pass through.
    pub fn line(&mut self, json: &str) -> Vec<String> {
        let Ok(Ordered(fields)) = serde_json::from_str::<Ordered>(json) else {
            return vec![json.to_string()];
        };
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| cell(v));
        let probe = get("probe").unwrap_or_default();
        let map = get("map").unwrap_or_default();
        let rest: Vec<&(String, Value)> = fields
            .iter()
            .filter(|(k, _)| k != "probe" && k != "map")
            .collect();
        let names: Vec<String> = rest.iter().map(|(k, _)| k.clone()).collect();
        if names == ["printed", "lost"] {
            return vec![format!(
                "{probe}: {} events of {map} printed, {} lost",
                get("printed").unwrap_or_default(),
                get("lost").unwrap_or_default()
            )];
        }
        let values: Vec<String> = rest.iter().map(|(_, v)| cell(v)).collect();
        let mut out = Vec::new();
        let index = match self
            .tables
            .iter()
            .position(|t| t.probe == probe && t.map == map && t.columns == names)
        {
            Some(i) => i,
            None => {
                // Room for a pid-sized number or a task name from the first row on, so columns
                // rarely move when a wider value comes.
                let widths = names
                    .iter()
                    .zip(&rest)
                    .map(|(n, (_, v))| {
                        let min = if v.is_number() { 7 } else { 16 };
                        n.len().max(cell(v).len()).max(min)
                    })
                    .collect();
                self.tables.push(Table {
                    probe: probe.clone(),
                    map: map.clone(),
                    columns: names.clone(),
                    widths,
                });
                self.tables.len() - 1
            }
        };
        let table = &mut self.tables[index];
        for (w, v) in table.widths.iter_mut().zip(&values) {
            *w = (*w).max(v.len());
        }
        if self.last != Some(index) {
            let mut header = format!("{:<PROBE_WIDTH$}", "PROBE");
            for (n, w) in table.columns.iter().zip(&table.widths) {
                let _ = write!(header, " {:<w$}", n.to_uppercase());
            }
            out.push(header.trim_end().to_string());
            self.last = Some(index);
        }
        let mut row = format!("{probe:<PROBE_WIDTH$}");
        for (v, w) in values.iter().zip(&table.widths) {
            let _ = write!(row, " {v:<w$}");
        }
        out.push(row.trim_end().to_string());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(lines: &str) -> String {
        let mut r = Renderer::new();
        lines
            .lines()
            .flat_map(|l| r.line(l))
            .map(|l| l + "\n")
            .collect()
    }

    #[test]
    fn events_map_dumps_and_summaries() {
        // Recorded from ebpf-run --format json on this host (hello of `ebpf-pack init`, syscount).
        let text = render(concat!(
            "{\"probe\":\"hello\",\"map\":\"events\",\"ppid\":6435,\"pid\":6440,\"uid\":0,\"comm\":\"bash\"}\n",
            "{\"probe\":\"hello\",\"map\":\"events\",\"ppid\":6435,\"pid\":16441,\"uid\":0,\"comm\":\"systemd-journal\"}\n",
            "{\"probe\":\"syscount\",\"map\":\"counts\",\"key\":321,\"value\":645}\n",
            "{\"probe\":\"syscount\",\"map\":\"counts\",\"key\":5,\"value\":81}\n",
            "{\"probe\":\"hello\",\"map\":\"events\",\"ppid\":1,\"pid\":2,\"uid\":0,\"comm\":\"init\"}\n",
            "{\"probe\":\"hello\",\"map\":\"events\",\"printed\":3,\"lost\":0}\n",
            "ebpf-run: not json\n",
        ));
        insta::assert_snapshot!(text);
    }
}

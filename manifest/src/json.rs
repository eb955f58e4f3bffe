//! A small JSON reader for the loader: `manifest.json` without serde_json's code size on the board
//! (serde_json and the derived deserializers add about 46 KB to an aarch64 ebpf-run; this reader, a
//! few KB). The host writes and reads manifests with serde; the loader only looks values up.
//!
//! RFC 8259 JSON, whole input, nesting limited to [`MAX_DEPTH`]. Numbers are kept as their text.

use std::fmt;

/// Deepest nesting accepted: a manifest needs 5; hostile input must not exhaust the stack.
pub const MAX_DEPTH: usize = 32;

/// One JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Number(String),
    /// A string, escapes resolved.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object's members in file order.
    Object(Vec<(String, Json)>),
}

/// Why a text is not JSON: what was wrong and at which byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What was expected or found.
    pub what: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

impl std::error::Error for JsonError {}

impl Json {
    /// Parses one JSON document (surrounding whitespace allowed, nothing else).
    pub fn parse(text: &[u8]) -> Result<Json, JsonError> {
        let mut r = Reader { text, at: 0 };
        let value = r.value(0)?;
        r.skip_space();
        if r.at != text.len() {
            return Err(r.error("trailing characters after the JSON value"));
        }
        Ok(value)
    }

    /// Member `key` of an object (the first, if repeated).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The number as an unsigned integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// `get(key)` as a string.
    pub fn str_at(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }
}

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn error(&self, what: &'static str) -> JsonError {
        JsonError {
            offset: self.at,
            what,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let hit = self.peek() == Some(byte);
        if hit {
            self.at += 1;
        }
        hit
    }

    /// The text not read yet.
    fn rest(&self) -> &[u8] {
        self.text.get(self.at..).unwrap_or_default()
    }

    fn literal(&mut self, word: &'static [u8], value: Json) -> Result<Json, JsonError> {
        if self.rest().starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("unknown literal (want true, false or null)"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.skip_space();
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::new();
                if self.eat(b'}') {
                    return Ok(Json::Object(members));
                }
                loop {
                    self.skip_space();
                    if self.peek() != Some(b'"') {
                        return Err(self.error("expected a string key"));
                    }
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return Err(self.error("expected `:` after the key"));
                    }
                    members.push((key, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Ok(Json::Object(members));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("expected `,` or `}` in the object"));
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Ok(Json::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("expected `,` or `]` in the array"));
                    }
                }
            }
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.literal(b"true", Json::Bool(true)),
            Some(b'f') => self.literal(b"false", Json::Bool(false)),
            Some(b'n') => self.literal(b"null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let first = self.peek();
        let int = self.digits();
        if int == 0 || (first == Some(b'0') && int > 1) {
            return Err(self.error("malformed number"));
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.error("malformed number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("malformed number"));
            }
        }
        // Only ASCII digits, signs, `.` and `e` were consumed.
        let text =
            String::from_utf8_lossy(self.text.get(start..self.at).unwrap_or_default()).into_owned();
        Ok(Json::Number(text))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("truncated \\u escape"))?;
        // Four hex digits exactly: `from_str_radix` alone would also take a leading `+`.
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(self.error("bad \\u escape"));
        }
        let text = std::str::from_utf8(digits).map_err(|_| self.error("bad \\u escape"))?;
        let value = u32::from_str_radix(text, 16).map_err(|_| self.error("bad \\u escape"))?;
        self.at += 4;
        Ok(value)
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Result<String, JsonError> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            self.at += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    let Some(escape) = self.peek() else {
                        return Err(self.error("unterminated string"));
                    };
                    self.at += 1;
                    let simple = match escape {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xd800..0xdc00).contains(&code) {
                                if !self.rest().starts_with(b"\\u") {
                                    return Err(self.error("unpaired surrogate in \\u escape"));
                                }
                                self.at += 2;
                                let low = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&low) {
                                    return Err(self.error("unpaired surrogate in \\u escape"));
                                }
                                code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                            }
                            let c = char::from_u32(code)
                                .ok_or_else(|| self.error("unpaired surrogate in \\u escape"))?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                            continue;
                        }
                        _ => return Err(self.error("unknown escape in string")),
                    };
                    out.push(simple);
                }
                0x00..=0x1f => return Err(self.error("control character in string")),
                _ => out.push(byte),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Json, JsonError> {
        Json::parse(text.as_bytes())
    }

    #[test]
    fn reads_every_kind_of_value() {
        // A sign is not a hex digit (found by fuzzing against serde_json).
        assert!(Json::parse(br#""\u+ed0""#).is_err());
        let v = parse(r#" {"a": [1, -2.5e3, true, false, null], "b": {"c": "x\"\\\/\n\u00e9\ud83d\ude00"}, "a": 0} "#)
            .expect("valid");
        let a = v.get("a").and_then(Json::as_array).expect("array");
        assert_eq!(a[0].as_u64(), Some(1));
        assert_eq!(a[1], Json::Number("-2.5e3".into()));
        assert_eq!(a[1].as_u64(), None);
        assert_eq!(&a[2..], [Json::Bool(true), Json::Bool(false), Json::Null]);
        assert_eq!(
            v.get("b").and_then(|b| b.str_at("c")),
            Some("x\"\\/\n\u{e9}\u{1f600}")
        );
        assert_eq!(v.get("missing"), None);
        assert_eq!(parse("[]"), Ok(Json::Array(vec![])));
        assert_eq!(parse("{}"), Ok(Json::Object(vec![])));
    }

    #[test]
    fn refuses_what_is_not_json_with_the_offset() {
        for (text, what, offset) in [
            ("", "unexpected end of input", 0),
            ("{\"a\" 1}", "expected `:` after the key", 5),
            ("[1 2]", "expected `,` or `]` in the array", 3),
            ("{\"a\":1,}", "expected a string key", 7),
            ("01", "malformed number", 2),
            ("1.", "malformed number", 2),
            ("\"abc", "unterminated string", 4),
            ("\"a\tb\"", "control character in string", 3),
            ("\"\\x\"", "unknown escape in string", 3),
            ("\"\\ud800\"", "unpaired surrogate in \\u escape", 7),
            ("nul", "unknown literal (want true, false or null)", 0),
            ("{} x", "trailing characters after the JSON value", 3),
        ] {
            assert_eq!(parse(text), Err(JsonError { offset, what }), "{text:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(&deep).map_err(|e| e.what), Err("nested too deeply"));
    }

    #[test]
    fn agrees_with_serde_json_on_a_manifest() {
        let manifest = crate::tests::sample();
        let text = serde_json::to_string_pretty(&manifest).expect("serialize");
        fn convert(v: &serde_json::Value) -> Json {
            match v {
                serde_json::Value::Null => Json::Null,
                serde_json::Value::Bool(b) => Json::Bool(*b),
                serde_json::Value::Number(n) => Json::Number(n.to_string()),
                serde_json::Value::String(s) => Json::String(s.clone()),
                serde_json::Value::Array(a) => Json::Array(a.iter().map(convert).collect()),
                serde_json::Value::Object(o) => {
                    Json::Object(o.iter().map(|(k, v)| (k.clone(), convert(v))).collect())
                }
            }
        }
        let expected: serde_json::Value = serde_json::from_str(&text).expect("parse");
        let mut got = Json::parse(text.as_bytes()).expect("parse");
        // serde_json's Value sorts object keys; compare with ours sorted likewise.
        fn sort(v: &mut Json) {
            match v {
                Json::Array(items) => items.iter_mut().for_each(sort),
                Json::Object(members) => {
                    members.sort_by(|a, b| a.0.cmp(&b.0));
                    members.iter_mut().for_each(|(_, v)| sort(v));
                }
                _ => {}
            }
        }
        sort(&mut got);
        assert_eq!(got, convert(&expected));
    }
}

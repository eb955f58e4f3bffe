//! The command-line options a tool declares in its source: `EP_OPTION("-p PID", "help")` (ebpf_pack.h)
//! puts a BTF decl tag `ebpf-pack:option -p PID<TAB>help` on a `const volatile` global, and
//! `ebpf-run TOOL -p 42` sets that global, in the spelling of the BCC tool of the same name. The
//! object carries its own options, so a loose object, a bundle and `--list` all show the same ones.

use crate::btf::{Btf, Kind};

/// Prefix of the decl tag text that declares an option.
pub const OPTION_TAG: &str = "ebpf-pack:option ";

/// One option of a tool: its flag, the placeholder of its value (none for a switch), its help text
/// and the global it sets. A flag in upper case (`PATTERN`) is a positional argument: the first
/// word after the tool's name that is not an option or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOption {
    /// The flag as typed: `-p`.
    pub flag: String,
    /// The value's placeholder (`PID`), or `None` for a switch that sets the global to 1.
    pub value: Option<String>,
    /// One line of help.
    pub help: String,
    /// The `const volatile` global the option sets.
    pub global: String,
}

/// Every option declared in `btf`, in the order of their tags. Tags that do not parse (no flag, not
/// on a variable) are ignored: they are not options.
pub fn tool_options(btf: &Btf) -> Vec<ToolOption> {
    let mut out: Vec<ToolOption> = Vec::new();
    for id in 1..btf.type_count() as u32 {
        let Some(tag) = btf.ty(id) else { break };
        if tag.kind != Kind::DeclTag {
            continue;
        }
        let Some(spec) = btf.string(tag.name_off).strip_prefix(OPTION_TAG) else {
            continue;
        };
        let Some(var) = btf.ty(tag.size_or_type).filter(|v| v.kind == Kind::Var) else {
            continue;
        };
        if let Some(mut option) = parse_spec(spec) {
            option.global = btf.string(var.name_off).to_owned();
            if !out.iter().any(|o| o.flag == option.flag) {
                out.push(option);
            }
        }
    }
    out
}

impl ToolOption {
    /// Whether this is a positional argument (`PATTERN`) rather than a flag.
    pub fn is_positional(&self) -> bool {
        !self.flag.starts_with('-')
    }
}

/// `-p PID<TAB>help` → the option without its global.
fn parse_spec(spec: &str) -> Option<ToolOption> {
    let (usage, help) = spec.split_once('\t').unwrap_or((spec, ""));
    let mut words = usage.split_whitespace();
    let flag = words.next()?;
    // `-p`, `--long`, or an upper-case word: a positional argument (funccount's PATTERN).
    let positional = flag.starts_with(|c: char| c.is_ascii_uppercase())
        && flag
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    let valid = positional
        || (flag.len() >= 2
            && flag.starts_with('-')
            && flag[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !valid {
        return None;
    }
    Some(ToolOption {
        flag: flag.to_owned(),
        value: words.next().map(str::to_owned),
        help: help.trim().to_owned(),
        global: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_into_flag_value_and_help() {
        let o = parse_spec("-p PID\ttrace this process id only").expect("parses");
        assert_eq!(
            (o.flag.as_str(), o.value.as_deref(), o.help.as_str()),
            ("-p", Some("PID"), "trace this process id only")
        );
        let pos = parse_spec("PATTERN\tfunctions to count").expect("parses");
        assert!(pos.is_positional());
        assert_eq!((pos.flag.as_str(), pos.value), ("PATTERN", None));
        let s = parse_spec("-x\tonly failed calls").expect("parses");
        assert_eq!((s.flag.as_str(), s.value), ("-x", None));
        assert_eq!(
            parse_spec("--long-name N").expect("parses").flag,
            "--long-name"
        );
        for bad in ["", "\thelp", "p PID", "-", "-p;x", "Pattern", "_X"] {
            assert!(parse_spec(bad).is_none(), "{bad:?}");
        }
    }
}

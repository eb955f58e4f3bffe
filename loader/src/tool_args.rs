//! Tool options in the BCC spelling: `ebpf-run opensnoop -p 42 -x execsnoop 1 5`. The words after a
//! probe are its options (declared by its object, bpfobj's `options`), their values, the generic
//! `-d SECS` / `-i SECS` and trailing `interval [count]` numbers, or the next probe. Which word is
//! which is known only once each probe's object is read, so [`split`] reads them one by one through
//! a callback. Pure otherwise.

use std::ffi::OsString;

use ebpf_pack_object::options::ToolOption;

use crate::args::{Target, UsageError, Word, target};

/// What the tool options of the command line asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolArgs {
    /// Per target, in target order: `(global, value)` pairs to set.
    pub sets: Vec<Vec<(String, String)>>,
    /// `-d SECS`.
    pub duration_secs: Option<u64>,
    /// `-i SECS` or the first trailing number.
    pub interval_secs: Option<u64>,
    /// The second trailing number: rounds of interval dumps.
    pub count: Option<u64>,
    /// `-h` after this target: print its options instead of running.
    pub help: Option<usize>,
}

/// Options every tool understands unless it declares the flag itself.
const GENERIC: &[(&str, &str, &str)] = &[
    ("-d", "SECS", "stop after SECS seconds (--duration)"),
    (
        "-i",
        "SECS",
        "print the maps every SECS seconds (--interval)",
    ),
];

/// Splits `words` into targets and tool options. `options_of` reads a target's object and returns
/// the options it declares (or why it cannot be read).
pub fn split<E: From<UsageError>>(
    words: &[Word],
    mut options_of: impl FnMut(&Target) -> Result<Vec<ToolOption>, E>,
) -> Result<(Vec<Target>, ToolArgs), E> {
    let mut targets: Vec<Target> = Vec::new();
    let mut args = ToolArgs::default();
    // The current target's name and options, and the option waiting for its value.
    let mut current: Option<(String, Vec<ToolOption>)> = None;
    let mut pending: Option<(String, Pending)> = None;
    let mut numbers = 0;
    // Positional arguments of the current tool already given.
    let mut positionals = 0;
    for word in words {
        let (text, literal) = match word {
            Word::Plain(w) => (w, false),
            Word::Literal(w) => (w, true),
        };
        let s = text.to_string_lossy();
        if let Some((flag, want)) = pending.take() {
            match want {
                Pending::Global(global) => push_last(&mut args.sets, (global, s.into_owned())),
                Pending::Duration => args.duration_secs = Some(whole(&flag, &s)?),
                Pending::Interval => args.interval_secs = Some(positive(&flag, &s)?),
            }
            continue;
        }
        let is_option = !literal && s.starts_with('-') && s.len() > 1;
        if is_option {
            let Some((tool, options)) = &current else {
                return Err(UsageError(format!(
                    "unknown option `{s}`; a tool's options follow its name (ebpf-run TOOL {s})"
                ))
                .into());
            };
            let idx = targets.len().saturating_sub(1);
            if s == "-h" || s == "--help" {
                args.help.get_or_insert(idx);
                continue;
            }
            let (flag, attached) = split_attached(&s, options);
            if let Some(o) = options.iter().find(|o| o.flag == flag) {
                match (&o.value, attached) {
                    (None, None) => push_last(&mut args.sets, (o.global.clone(), "1".into())),
                    (None, Some(_)) => {
                        return Err(UsageError(format!("{tool}: {flag} takes no value")).into());
                    }
                    (Some(_), Some(v)) => push_last(&mut args.sets, (o.global.clone(), v)),
                    (Some(_), None) => {
                        pending =
                            Some((format!("{tool} {flag}"), Pending::Global(o.global.clone())))
                    }
                }
                continue;
            }
            let want = match flag.as_str() {
                "-d" => Pending::Duration,
                "-i" => Pending::Interval,
                _ => {
                    return Err(UsageError(format!(
                        "{tool} has no option `{s}`; its options: {}",
                        summary(options)
                    ))
                    .into());
                }
            };
            match attached {
                Some(v) => match want {
                    Pending::Duration => args.duration_secs = Some(whole(&flag, &v)?),
                    _ => args.interval_secs = Some(positive(&flag, &v)?),
                },
                None => pending = Some((format!("{tool} {flag}"), want)),
            }
            continue;
        }
        let numeric = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if let (false, false, Some((_, options))) = (literal, numeric, &current)
            && let Some(o) = options
                .iter()
                .filter(|o| o.is_positional())
                .nth(positionals)
        {
            push_last(&mut args.sets, (o.global.clone(), s.into_owned()));
            positionals += 1;
            continue;
        }
        if !literal && current.is_some() && numeric {
            let tool = current.as_ref().map_or("", |(t, _)| t.as_str());
            numbers += 1;
            match numbers {
                1 => args.interval_secs = Some(positive(&format!("{tool} interval"), &s)?),
                2 => args.count = Some(positive(&format!("{tool} count"), &s)?),
                _ => {
                    return Err(UsageError(format!(
                        "{tool}: `{s}`: only `interval [count]` may follow a tool's options"
                    ))
                    .into());
                }
            }
            continue;
        }
        let t = target(OsString::from(text))?;
        let options = options_of(&t)?;
        let name = match &t {
            Target::Probe(n) => n.clone(),
            Target::File(p) => p.display().to_string(),
        };
        targets.push(t);
        args.sets.push(Vec::new());
        current = Some((name, options));
        numbers = 0;
        positionals = 0;
    }
    if let Some((flag, _)) = pending {
        return Err(UsageError(format!("{flag} needs a value")).into());
    }
    Ok((targets, args))
}

/// What a flag waiting for its value will set.
enum Pending {
    Global(String),
    Duration,
    Interval,
}

/// `-p42` → (`-p`, Some("42")) when `-p` takes a value (a declared or generic one); else the word.
fn split_attached(word: &str, options: &[ToolOption]) -> (String, Option<String>) {
    if let Some((flag, v)) = word.split_once('=') {
        return (flag.to_owned(), Some(v.to_owned()));
    }
    let flag = word.get(..2).unwrap_or(word);
    let takes_value = options
        .iter()
        .find(|o| o.flag == flag)
        .map_or(GENERIC.iter().any(|g| g.0 == flag), |o| o.value.is_some());
    if word.len() > 2
        && !word.starts_with("--")
        && takes_value
        && !options.iter().any(|o| o.flag == word)
    {
        return (flag.to_owned(), Some(word[2..].to_owned()));
    }
    (word.to_owned(), None)
}

/// `-p PID, -x, -d SECS, -i SECS`: a tool's flags, then the generic ones it does not shadow.
fn summary(options: &[ToolOption]) -> String {
    let mut parts: Vec<String> = options
        .iter()
        .map(|o| match &o.value {
            _ if o.is_positional() => o.flag.clone(),
            Some(v) => format!("{} {v}", o.flag),
            None => o.flag.clone(),
        })
        .collect();
    for (flag, value, _) in GENERIC {
        if !options.iter().any(|o| o.flag == *flag) {
            parts.push(format!("{flag} {value}"));
        }
    }
    parts.join(", ")
}

/// Adds a setting to the latest target's list (`sets` grows with the targets, one list each).
fn push_last(sets: &mut [Vec<(String, String)>], setting: (String, String)) {
    if let Some(last) = sets.last_mut() {
        last.push(setting);
    }
}

/// The `-h` text of a tool: its options with their help and the global each sets, then the generic
/// ones it does not shadow.
pub fn help(tool: &str, options: &[ToolOption]) -> String {
    let mut rows: Vec<(String, String)> = options
        .iter()
        .map(|o| {
            let usage = match &o.value {
                Some(v) => format!("{} {v}", o.flag),
                None => o.flag.clone(),
            };
            (usage, format!("{} (sets {})", o.help, o.global))
        })
        .collect();
    for (flag, value, help) in GENERIC {
        if !options.iter().any(|o| o.flag == *flag) {
            rows.push((format!("{flag} {value}"), (*help).to_owned()));
        }
    }
    rows.push((
        "interval [count]".into(),
        "print the maps every interval seconds, count times".into(),
    ));
    let width = rows.iter().map(|(u, _)| u.len()).max().unwrap_or(0);
    let positional: String = options
        .iter()
        .filter(|o| o.is_positional())
        .map(|o| format!(" {}", o.flag))
        .collect();
    let mut out = format!("usage: ebpf-run {tool} [OPTIONS]{positional} [interval [count]]\n\n");
    for (usage, help) in rows {
        out.push_str(&format!("  {usage:<width$}  {help}\n"));
    }
    out
}

/// A whole number of seconds for `what`.
fn whole(what: &str, s: &str) -> Result<u64, UsageError> {
    s.parse::<u64>()
        .map_err(|_| UsageError(format!("{what} needs a whole number, got `{s}`")))
}

/// A whole number of at least 1 for `what`.
fn positive(what: &str, s: &str) -> Result<u64, UsageError> {
    match whole(what, s)? {
        0 => Err(UsageError(format!("{what} needs at least 1, got 0"))),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(flag: &str, value: Option<&str>, global: &str) -> ToolOption {
        ToolOption {
            flag: flag.into(),
            value: value.map(Into::into),
            help: format!("sets {global}"),
            global: global.into(),
        }
    }

    /// opensnoop takes `-p PID` and `-x`; biolatency declares its own `-d DISK`; others take nothing.
    fn options_of(t: &Target) -> Result<Vec<ToolOption>, UsageError> {
        Ok(match t {
            Target::Probe(n) if n == "opensnoop" => vec![
                opt("-p", Some("PID"), "filter_pid"),
                opt("-x", None, "failed_only"),
            ],
            Target::Probe(n) if n == "biolatency" => vec![opt("-d", Some("DISK"), "filter_disk")],
            Target::Probe(n) if n == "funccount" => vec![opt("PATTERN", None, "pattern")],
            _ => vec![],
        })
    }

    fn run(words: &[&str]) -> Result<(Vec<Target>, ToolArgs), UsageError> {
        let words: Vec<Word> = words.iter().map(|w| Word::Plain((*w).into())).collect();
        split(&words, options_of)
    }

    fn probe(n: &str) -> Target {
        Target::Probe(n.into())
    }

    fn set(g: &str, v: &str) -> (String, String) {
        (g.into(), v.into())
    }

    #[test]
    fn options_values_and_next_tools_are_told_apart() {
        let (t, a) =
            run(&["opensnoop", "-p", "42", "-x", "execsnoop", "syscount.bpf.o"]).expect("parses");
        assert_eq!(
            t,
            vec![
                probe("opensnoop"),
                probe("execsnoop"),
                Target::File("syscount.bpf.o".into())
            ]
        );
        assert_eq!(
            a.sets,
            vec![
                vec![set("filter_pid", "42"), set("failed_only", "1")],
                vec![],
                vec![]
            ]
        );
        // A value that looks like a probe name is still the value of the flag before it.
        let (t, a) = run(&["opensnoop", "-p", "execsnoop"]).expect("parses");
        assert_eq!(
            (t.len(), &a.sets[0]),
            (1, &vec![set("filter_pid", "execsnoop")])
        );
        // Attached values: -p42 and -p=42.
        for w in ["-p42", "-p=42"] {
            assert_eq!(
                run(&["opensnoop", w]).expect("parses").1.sets[0],
                vec![set("filter_pid", "42")]
            );
        }
    }

    #[test]
    fn generic_duration_interval_and_trailing_numbers() {
        let (_, a) = run(&["execsnoop", "-d", "5"]).expect("parses");
        assert_eq!(a.duration_secs, Some(5));
        let (_, a) = run(&["syscount", "-i3"]).expect("parses");
        assert_eq!(a.interval_secs, Some(3));
        let (_, a) = run(&["syscount", "1", "10"]).expect("parses");
        assert_eq!((a.interval_secs, a.count), (Some(1), Some(10)));
        // A tool that declares -d itself keeps it.
        let (_, a) = run(&["biolatency", "-d", "sda", "2"]).expect("parses");
        assert_eq!(
            (a.sets[0].clone(), a.duration_secs, a.interval_secs),
            (vec![set("filter_disk", "sda")], None, Some(2))
        );
        // Numbers start again after each tool.
        let (_, a) = run(&["syscount", "1", "execsnoop", "2", "3"]).expect("parses");
        assert_eq!((a.interval_secs, a.count), (Some(2), Some(3)));
    }

    #[test]
    fn positional_arguments_take_the_first_plain_word() {
        let (t, a) = run(&["funccount", "vfs_*", "1", "3", "opensnoop"]).expect("parses");
        assert_eq!(t, vec![probe("funccount"), probe("opensnoop")]);
        assert_eq!(a.sets[0], vec![set("pattern", "vfs_*")]);
        assert_eq!((a.interval_secs, a.count), (Some(1), Some(3)));
        // Once given, a plain word is the next tool again.
        let (t, _) = run(&["funccount", "tcp_*", "execsnoop"]).expect("parses");
        assert_eq!(t.len(), 2);
        assert!(
            help("funccount", &options_of(&probe("funccount")).expect("o"))
                .starts_with("usage: ebpf-run funccount [OPTIONS] PATTERN [interval [count]]")
        );
    }

    #[test]
    fn help_is_per_tool_and_lists_what_the_object_declares() {
        let (_, a) = run(&["execsnoop", "opensnoop", "-h"]).expect("parses");
        assert_eq!(a.help, Some(1));
        let text = help(
            "opensnoop",
            &options_of(&probe("opensnoop")).expect("parses"),
        );
        assert!(
            text.contains("  -p PID            sets filter_pid (sets filter_pid)\n"),
            "{text}"
        );
        assert!(
            text.contains("-d SECS") && text.contains("interval [count]"),
            "{text}"
        );
        assert!(
            !help(
                "biolatency",
                &options_of(&probe("biolatency")).expect("parses")
            )
            .contains("-d SECS")
        );
    }

    #[test]
    fn bad_tool_options_say_what_the_tool_takes() {
        let e = run(&["opensnoop", "-q"]).expect_err("an error").0;
        assert_eq!(
            e,
            "opensnoop has no option `-q`; its options: -p PID, -x, -d SECS, -i SECS"
        );
        assert!(
            run(&["-p", "42"])
                .expect_err("an error")
                .0
                .contains("follow its name")
        );
        assert_eq!(
            run(&["opensnoop", "-p"]).expect_err("an error").0,
            "opensnoop -p needs a value"
        );
        assert_eq!(
            run(&["opensnoop", "-x=1"]).expect_err("an error").0,
            "opensnoop: -x takes no value"
        );
        assert!(
            run(&["syscount", "0"])
                .expect_err("an error")
                .0
                .contains("at least 1")
        );
        assert!(
            run(&["syscount", "1", "2", "3"])
                .expect_err("an error")
                .0
                .contains("interval [count]")
        );
        assert!(
            run(&["execsnoop", "-d", "soon"])
                .expect_err("an error")
                .0
                .contains("whole number")
        );
        assert!(run(&["dir/probe"]).is_err());
    }

    #[test]
    fn literal_words_are_always_targets() {
        let words = vec![
            Word::Plain("opensnoop".into()),
            Word::Literal("--weird.o".into()),
        ];
        let (t, _) = split(&words, options_of).expect("parses");
        assert_eq!(
            t,
            vec![probe("opensnoop"), Target::File("--weird.o".into())]
        );
    }
}

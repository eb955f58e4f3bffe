//! The one error type of the loader: a message, optional detail lines and a hint, and the exit code.

use std::error::Error;
use std::io;

/// Process exit codes, as documented in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Bad command line or unknown probe name.
    Usage = 1,
    /// Unreadable or malformed bundle, object or BTF; CO-RE without BTF.
    BadInput = 2,
    /// The kernel refused to load a map or program (verifier, privilege, relocation).
    Load = 3,
    /// A program could not be attached (missing attach point, unsupported kind).
    Attach = 4,
    /// `--check`: the running kernel cannot run the selected probes.
    NotReady = 5,
}

/// A fatal error, printed to stderr as `ebpf-run: error: …` followed by details and a `help:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Exit code to leave with.
    pub exit: Exit,
    /// One line naming the subject first.
    pub message: String,
    /// Extra lines (e.g. the verifier log tail), printed indented.
    pub details: Vec<String>,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure with a message and no hint.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
            details: Vec::new(),
            hint: None,
        }
    }

    /// Adds a hint line.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Renders the failure as the lines printed to stderr.
    pub fn render(&self) -> String {
        let mut s = format!("ebpf-run: error: {}\n", self.message);
        for d in &self.details {
            s.push_str("    ");
            s.push_str(d);
            s.push('\n');
        }
        if let Some(h) = &self.hint {
            s.push_str("  help: ");
            s.push_str(h);
            s.push('\n');
        }
        s
    }
}

/// The error and its sources as one `a: b: c` line, skipping sources already quoted by their parent.
pub fn chain(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut last = out.clone();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !contains(&last, &text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        last = text;
        source = s.source();
    }
    out
}

/// Whether `needle` occurs in `hay` (a plain byte search: smaller than `str::contains`).
pub fn contains(hay: &str, needle: &str) -> bool {
    needle.is_empty()
        || hay
            .as_bytes()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

/// The first OS error number in an error's source chain.
pub fn os_error(e: &(dyn Error + 'static)) -> Option<i32> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(code) = err
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return Some(code);
        }
        cur = err.source();
    }
    None
}

/// The hint for a missing-privilege error.
pub const PRIVILEGE_HINT: &str =
    "run as root, or grant CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8)";

impl From<crate::args::UsageError> for Failure {
    fn from(e: crate::args::UsageError) -> Self {
        Failure::new(Exit::Usage, e.0)
            .hint("see ebpf-run --help, or ebpf-run TOOL -h for a tool's options")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Outer(io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "create map: {}", self.0)
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn chain_skips_repeated_sources_and_finds_errno() {
        let e = Outer(io::Error::from_raw_os_error(1));
        assert_eq!(chain(&e), e.to_string());
        assert_eq!(os_error(&e), Some(1));
    }

    #[test]
    fn render_puts_details_and_hint_on_their_own_lines() {
        let mut f = Failure::new(Exit::Load, "probe x: rejected").hint("fix it");
        f.details.push("R1 invalid mem access".into());
        assert_eq!(
            f.render(),
            "ebpf-run: error: probe x: rejected\n    R1 invalid mem access\n  help: fix it\n"
        );
    }
}

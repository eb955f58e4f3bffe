//! Errors located in the program text: a span, a message, a hint, and a rendering with the line and a
//! caret under the span, the way compilers report them.

use std::fmt::Write as _;

/// A byte range `start..end` of the program text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte (equal to `start` for a point, e.g. the end of the text).
    pub end: usize,
}

impl Span {
    /// The span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A problem with the program, at a place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where.
    pub span: Span,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something to say.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without a hint.
    pub fn new(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span,
            message: message.into(),
            hint: None,
        }
    }

    /// The same with a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// 1-based line and column (in characters) of the span's start in `source`.
    pub fn line_col(&self, source: &str) -> (usize, usize) {
        let start = self.span.start.min(source.len());
        let before = source.get(..start).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// The report: `error: MESSAGE`, ` --> NAME:LINE:COL`, the line with a caret run under the span,
    /// and the hint.
    pub fn render(&self, name: &str, source: &str) -> String {
        let (line, col) = self.line_col(source);
        let text = source.lines().nth(line - 1).unwrap_or("");
        let width = {
            let start = self.span.start.min(source.len());
            let end = self.span.end.clamp(start, source.len());
            // The caret run stays on the first line of a span that crosses lines.
            let covered = source.get(start..end).unwrap_or("");
            covered
                .split('\n')
                .next()
                .map_or(1, |s| s.chars().count().max(1))
        };
        let gutter = line.to_string().len();
        let mut out = format!("error: {}\n", self.message);
        let _ = writeln!(out, "{:gutter$}--> {name}:{line}:{col}", "");
        let _ = writeln!(out, "{:gutter$} |", "");
        let _ = writeln!(out, "{line} | {text}");
        let _ = writeln!(
            out,
            "{:gutter$} | {:pad$}{}",
            "",
            "",
            "^".repeat(width),
            pad = col - 1
        );
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{:gutter$} = help: {hint}", "");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_point_at_the_line_and_column_with_a_caret_run() {
        let src = "BEGIN { x }\ntracepoint:a:b { @[pidd] = count(); }\n";
        let start = src.find("pidd").expect("in source");
        let d = Diagnostic::new(Span::new(start, start + 4), "unknown builtin `pidd`")
            .hint("did you mean `pid`?");
        assert_eq!(d.line_col(src), (2, 20));
        assert_eq!(
            d.render("-e", src),
            "error: unknown builtin `pidd`\n \
             --> -e:2:20\n  \
             |\n\
             2 | tracepoint:a:b { @[pidd] = count(); }\n  \
             |                    ^^^^\n  \
             = help: did you mean `pid`?\n"
        );
        // The end of the text is a place too.
        let end = Diagnostic::new(Span::new(src.len(), src.len()), "expected `}`");
        assert_eq!(end.line_col(src), (3, 1));
        assert!(end.render("x.bt", src).contains("--> x.bt:3:1"));
    }
}

//! Tokens of the language, read on demand: the parser asks for the next token, or — where a probe
//! is named — for a raw probe word (`tracepoint:syscalls:sys_enter_*`, `uprobe:/bin/bash:readline`),
//! whose characters would not be tokens anywhere else.

// Outside input (files other people send, programs people type) is parsed here: an index or
// `expect` it can reach is a panic, so each is an error outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::expect_used,
        clippy::unwrap_used,
        clippy::panic,
        clippy::unreachable
    )
)]

use crate::diagnostic::{Diagnostic, Span};

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A name: a builtin, a function, a keyword (`if`, `else`, `unroll`), a field.
    Ident(String),
    /// An integer literal (decimal or `0x` hex).
    Int(u64),
    /// A string literal, escapes resolved.
    Str(String),
    /// `@name`, or `@` alone (the empty name).
    Map(String),
    /// `$name`.
    Var(String),
    /// Punctuation and operators, as written (`(`, `->`, `<=`, `+=`, `++`, ...).
    Punct(&'static str),
    /// The end of the text.
    Eof,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub tok: Tok,
    /// Where.
    pub span: Span,
}

/// Operators and punctuation, longest first so that `<=` wins over `<`.
const PUNCTS: &[&str] = &[
    "<<=", ">>=", "->", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<=", ">=",
    "==", "!=", "&&", "||", "<<", ">>", "(", ")", "{", "}", "[", "]", ",", ";", ":", "?", ".", "+",
    "-", "*", "/", "%", "&", "|", "^", "!", "~", "<", ">", "=",
];

/// Reads tokens from the program text.
pub struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

impl<'s> Lexer<'s> {
    /// A lexer at the start of `src`.
    pub fn new(src: &'s str) -> Lexer<'s> {
        Lexer { src, pos: 0 }
    }

    /// The byte offset the next read starts from.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Moves back to `pos` (a token's start), so that it is read again, perhaps differently.
    pub fn rewind(&mut self, pos: usize) {
        self.pos = pos.min(self.src.len());
    }

    fn rest(&self) -> &'s str {
        self.src.get(self.pos..).unwrap_or("")
    }

    /// Skips whitespace and `//` and `/* */` comments.
    fn skip_blank(&mut self) -> Result<(), Diagnostic> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if let Some(body) = trimmed.strip_prefix("/*") {
                let Some(end) = body.find("*/") else {
                    return Err(Diagnostic::new(
                        Span::new(self.pos, self.pos + 2),
                        "this comment is never closed",
                    )
                    .hint("end it with */"));
                };
                self.pos += end + 4;
            } else {
                return Ok(());
            }
        }
    }

    /// The next token.
    pub fn next_token(&mut self) -> Result<Token, Diagnostic> {
        self.skip_blank()?;
        let start = self.pos;
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Ok(Token {
                tok: Tok::Eof,
                span: Span::new(start, start),
            });
        };
        let word = |s: &str| {
            s.char_indices()
                .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
                .map_or(s.len(), |(i, _)| i)
        };
        let tok = if c.is_ascii_alphabetic() || c == '_' {
            let n = word(rest);
            self.pos += n;
            Tok::Ident(rest[..n].to_owned())
        } else if c == '@' || c == '$' {
            let n = word(&rest[1..]);
            self.pos += 1 + n;
            let name = rest[1..1 + n].to_owned();
            if c == '@' {
                Tok::Map(name)
            } else if name.is_empty() {
                return Err(
                    Diagnostic::new(Span::new(start, start + 1), "`$` names no variable")
                        .hint("scratch variables are written $name"),
                );
            } else {
                Tok::Var(name)
            }
        } else if c.is_ascii_digit() {
            let n = word(rest);
            self.pos += n;
            let text = &rest[..n];
            let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => text.parse::<u64>().ok(),
            };
            Tok::Int(value.ok_or_else(|| {
                Diagnostic::new(
                    Span::new(start, self.pos),
                    format!("`{text}` is not a number"),
                )
                .hint("integers are decimal or 0x hex, at most 2^64-1")
            })?)
        } else if c == '"' {
            Tok::Str(self.string(start)?)
        } else if let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) {
            self.pos += p.len();
            Tok::Punct(p)
        } else {
            return Err(Diagnostic::new(
                Span::new(start, start + c.len_utf8()),
                format!("unexpected character `{c}`"),
            ));
        };
        Ok(Token {
            tok,
            span: Span::new(start, self.pos),
        })
    }

    /// A string literal starting at `start` (its opening quote).
    fn string(&mut self, start: usize) -> Result<String, Diagnostic> {
        let mut out = String::new();
        let mut chars = self.src[start + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = start + 1 + i + 1;
                    return Ok(out);
                }
                '\n' => break,
                '\\' => {
                    let Some((j, e)) = chars.next() else { break };
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        '\\' => '\\',
                        '"' => '"',
                        other => {
                            let at = start + 1 + j;
                            return Err(Diagnostic::new(
                                Span::new(at - 1, at + other.len_utf8()),
                                format!("unknown escape `\\{other}`"),
                            )
                            .hint(r#"escapes are \n \t \r \0 \\ \""#));
                        }
                    });
                }
                c => out.push(c),
            }
        }
        Err(
            Diagnostic::new(Span::new(start, start + 1), "this string is never closed")
                .hint("end it with \" on the same line"),
        )
    }

    /// A probe word: everything up to whitespace, `,`, `{` or a comment. A `/` inside it belongs
    /// to it (`uprobe:/bin/bash:readline`); a predicate after it must be set off by a space.
    pub fn probe_word(&mut self) -> Result<Option<Token>, Diagnostic> {
        self.skip_blank()?;
        let start = self.pos;
        let rest = self.rest();
        let n = rest
            .char_indices()
            .find(|&(i, c)| {
                c.is_whitespace()
                    || c == ','
                    || c == '{'
                    || (i == 0 && c == '/')
                    || rest[i..].starts_with("//")
                    || rest[i..].starts_with("/*")
            })
            .map_or(rest.len(), |(i, _)| i);
        if n == 0 {
            return Ok(None);
        }
        self.pos += n;
        Ok(Some(Token {
            tok: Tok::Ident(rest[..n].to_owned()),
            span: Span::new(start, self.pos),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        let mut lx = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = lx.next_token().expect("token");
            if t.tok == Tok::Eof {
                return out;
            }
            out.push(t.tok);
        }
    }

    #[test]
    fn tokens_of_a_one_liner() {
        assert_eq!(
            toks("@[comm] = count(); $x += 0x10 >= 3 // c\n /* d */ \"a\\tb\" args->f"),
            vec![
                Tok::Map(String::new()),
                Tok::Punct("["),
                Tok::Ident("comm".into()),
                Tok::Punct("]"),
                Tok::Punct("="),
                Tok::Ident("count".into()),
                Tok::Punct("("),
                Tok::Punct(")"),
                Tok::Punct(";"),
                Tok::Var("x".into()),
                Tok::Punct("+="),
                Tok::Int(16),
                Tok::Punct(">="),
                Tok::Int(3),
                Tok::Str("a\tb".into()),
                Tok::Ident("args".into()),
                Tok::Punct("->"),
                Tok::Ident("f".into()),
            ]
        );
    }

    #[test]
    fn probe_words_keep_paths_and_wildcards() {
        let mut lx = Lexer::new("  uprobe:/bin/bash:readline /pid == 1/ { }");
        let w = lx.probe_word().expect("word").expect("some");
        assert_eq!(w.tok, Tok::Ident("uprobe:/bin/bash:readline".into()));
        assert_eq!(lx.next_token().expect("slash").tok, Tok::Punct("/"));
        let mut lx = Lexer::new("kprobe:vfs_*,tracepoint:syscalls:sys_enter_open*{");
        let w = lx.probe_word().expect("word").expect("some");
        assert_eq!(w.tok, Tok::Ident("kprobe:vfs_*".into()));
    }

    #[test]
    fn bad_tokens_are_located() {
        let err = |src: &str| {
            let mut lx = Lexer::new(src);
            loop {
                match lx.next_token() {
                    Ok(t) if t.tok == Tok::Eof => panic!("no error in {src:?}"),
                    Ok(_) => {}
                    Err(d) => return d,
                }
            }
        };
        assert_eq!(err("x \"open").span, Span::new(2, 3));
        assert_eq!(err("x \"a\\q\"").message, "unknown escape `\\q`");
        assert_eq!(
            err("1 + 99999999999999999999").message,
            "`99999999999999999999` is not a number"
        );
        assert_eq!(err("a # b").span, Span::new(2, 3));
        assert_eq!(err("/* never").message, "this comment is never closed");
        assert_eq!(err("$ = 1").message, "`$` names no variable");
    }
}

//! The parser: a program text to its [`Program`], or the first syntax error, located.

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

use crate::ast::{AttachPoint, Expr, ExprKind, MapRef, Probe, Program, Stmt};
use crate::diagnostic::{Diagnostic, Span};
use crate::lexer::{Lexer, Tok, Token};

/// Binary operators by binding strength, weakest first (C's levels, as bpftrace uses them).
const LEVELS: &[&[&str]] = &[
    &["||"],
    &["&&"],
    &["|"],
    &["^"],
    &["&"],
    &["==", "!="],
    &["<", ">", "<=", ">="],
    &["<<", ">>"],
    &["+", "-"],
    &["*", "/", "%"],
];

/// Deepest nesting of expressions and blocks the parser follows (a bound on its stack).
const MAX_DEPTH: usize = 32;

/// Parses a whole program.
pub fn parse(src: &str) -> Result<Program, Diagnostic> {
    let mut p = Parser {
        lx: Lexer::new(src),
        peeked: Vec::new(),
        in_predicate: false,
        depth: 0,
    };
    let mut probes = Vec::new();
    loop {
        if p.peek(0)?.tok == Tok::Eof {
            break;
        }
        probes.push(p.probe()?);
    }
    if probes.is_empty() {
        return Err(Diagnostic::new(Span::new(0, src.len()), "the program has no probe")
            .hint("write PROBE { ACTIONS }, e.g. tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }"));
    }
    Ok(Program { probes })
}

struct Parser<'s> {
    lx: Lexer<'s>,
    peeked: Vec<Token>,
    in_predicate: bool,
    depth: usize,
}

/// How a token is named in "expected ..., found ..." messages.
fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Int(n) => format!("`{n}`"),
        Tok::Str(_) => "a string".into(),
        Tok::Map(m) => format!("`@{m}`"),
        Tok::Var(v) => format!("`${v}`"),
        Tok::Punct(p) => format!("`{p}`"),
        Tok::Eof => "the end of the program".into(),
    }
}

impl Parser<'_> {
    fn peek(&mut self, n: usize) -> Result<&Token, Diagnostic> {
        while self.peeked.len() <= n {
            let t = self.lx.next_token()?;
            self.peeked.push(t);
        }
        // Filled up to `n` just above.
        self.peeked
            .get(n)
            .ok_or_else(|| Diagnostic::new(Span::default(), "the program ends here"))
    }

    fn next(&mut self) -> Result<Token, Diagnostic> {
        self.peek(0)?;
        Ok(self.peeked.remove(0))
    }

    fn is_punct(&mut self, n: usize, p: &str) -> Result<bool, Diagnostic> {
        Ok(matches!(&self.peek(n)?.tok, Tok::Punct(q) if *q == p))
    }

    fn eat(&mut self, p: &str) -> Result<bool, Diagnostic> {
        if self.is_punct(0, p)? {
            self.next()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn expect(&mut self, p: &str, context: &str) -> Result<Span, Diagnostic> {
        let t = self.next()?;
        match t.tok {
            Tok::Punct(q) if q == p => Ok(t.span),
            other => Err(Diagnostic::new(
                t.span,
                format!("expected `{p}` {context}, found {}", describe(&other)),
            )),
        }
    }

    fn deeper(&mut self, at: Span) -> Result<(), Diagnostic> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(
                Diagnostic::new(at, format!("nested more than {MAX_DEPTH} deep"))
                    .hint("split the expression with scratch variables ($x = ...)"),
            );
        }
        Ok(())
    }

    /// A probe word, read raw from where the next token would start.
    fn probe_word(&mut self) -> Result<AttachPoint, Diagnostic> {
        if let Some(first) = self.peeked.first() {
            self.lx.rewind(first.span.start);
            self.peeked.clear();
        }
        let at = self.lx.pos();
        match self.lx.probe_word()? {
            Some(Token {
                tok: Tok::Ident(text),
                span,
            }) if text.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                Ok(AttachPoint { text, span })
            }
            Some(Token {
                tok: Tok::Ident(text),
                span,
            }) => {
                // Not a provider name: report the first token of it.
                self.lx.rewind(span.start);
                let t = self.next()?;
                let found = if matches!(t.tok, Tok::Punct(_)) {
                    describe(&t.tok)
                } else {
                    format!("`{text}`")
                };
                Err(Diagnostic::new(t.span, format!("expected a probe, found {found}"))
                    .hint("probes are written like tracepoint:syscalls:sys_enter_openat, kprobe:vfs_read, BEGIN"))
            }
            _ => {
                let t = self.next()?;
                Err(Diagnostic::new(
                    if t.tok == Tok::Eof { Span::new(at, at) } else { t.span },
                    format!("expected a probe, found {}", describe(&t.tok)),
                )
                .hint("probes are written like tracepoint:syscalls:sys_enter_openat, kprobe:vfs_read, BEGIN"))
            }
        }
    }

    fn probe(&mut self) -> Result<Probe, Diagnostic> {
        let mut points = vec![self.probe_word()?];
        while self.eat(",")? {
            points.push(self.probe_word()?);
        }
        let predicate = if self.eat("/")? {
            self.in_predicate = true;
            let e = self.expr();
            self.in_predicate = false;
            let e = e?;
            self.expect("/", "to end the filter")?;
            Some(e)
        } else {
            None
        };
        if !self.is_punct(0, "{")? {
            let t = self.next()?;
            return Err(Diagnostic::new(
                t.span,
                format!(
                    "expected `{{` to start the probe's actions, found {}",
                    describe(&t.tok)
                ),
            )
            .hint("a filter is written /pred/ and set off from the probe by a space"));
        }
        let body = self.block()?;
        Ok(Probe {
            points,
            predicate,
            body,
        })
    }

    fn block(&mut self) -> Result<Vec<Stmt>, Diagnostic> {
        let open = self.expect("{", "to start a block")?;
        self.deeper(open)?;
        let mut stmts = Vec::new();
        loop {
            if self.eat("}")? {
                break;
            }
            if self.eat(";")? {
                continue;
            }
            if self.peek(0)?.tok == Tok::Eof {
                return Err(
                    Diagnostic::new(open, "this block is never closed").hint("end it with }")
                );
            }
            let s = self.stmt()?;
            let compound = matches!(s, Stmt::If { .. } | Stmt::Unroll { .. });
            stmts.push(s);
            if self.peek(0)?.tok == Tok::Eof {
                return Err(
                    Diagnostic::new(open, "this block is never closed").hint("end it with }")
                );
            }
            if !compound && !self.is_punct(0, "}")? {
                self.expect(";", "between statements")?;
            }
        }
        self.depth -= 1;
        Ok(stmts)
    }

    fn stmt(&mut self) -> Result<Stmt, Diagnostic> {
        let t = self.peek(0)?.clone();
        match &t.tok {
            Tok::Ident(k) if k == "if" => {
                self.next()?;
                self.expect("(", "after `if`")?;
                let cond = self.expr()?;
                self.expect(")", "to end the condition")?;
                let then = self.block()?;
                let otherwise = match &self.peek(0)?.tok {
                    Tok::Ident(e) if e == "else" => {
                        self.next()?;
                        if matches!(&self.peek(0)?.tok, Tok::Ident(i) if i == "if") {
                            vec![self.stmt()?]
                        } else {
                            self.block()?
                        }
                    }
                    _ => Vec::new(),
                };
                Ok(Stmt::If {
                    cond,
                    then,
                    otherwise,
                    span: t.span,
                })
            }
            Tok::Ident(k) if k == "unroll" => {
                self.next()?;
                self.expect("(", "after `unroll`")?;
                let n = self.next()?;
                let Tok::Int(count) = n.tok else {
                    return Err(Diagnostic::new(
                        n.span,
                        format!("`unroll` takes a number, found {}", describe(&n.tok)),
                    ));
                };
                let close = self.expect(")", "after the unroll count")?;
                let body = self.block()?;
                Ok(Stmt::Unroll {
                    count,
                    body,
                    span: t.span.to(close),
                })
            }
            Tok::Map(_) => {
                let map = self.map_ref()?;
                let (op, value) = self.assignment(map.span, "a map")?;
                let span = map.span.to(value.span);
                Ok(Stmt::MapAssign {
                    map,
                    op,
                    value,
                    span,
                })
            }
            Tok::Var(name) => {
                let name = name.clone();
                self.next()?;
                let (op, value) = self.assignment(t.span, "a variable")?;
                let span = t.span.to(value.span);
                Ok(Stmt::VarAssign {
                    name,
                    op,
                    value,
                    span,
                })
            }
            _ => Ok(Stmt::Expr(self.expr()?)),
        }
    }

    /// `= e`, `op= e`, `++` or `--` after a map or variable.
    fn assignment(&mut self, target: Span, what: &str) -> Result<(&'static str, Expr), Diagnostic> {
        let t = self.next()?;
        match t.tok {
            Tok::Punct(
                op @ ("=" | "+=" | "-=" | "*=" | "/=" | "%=" | "&=" | "|=" | "^=" | "<<=" | ">>="),
            ) => Ok((op, self.expr()?)),
            Tok::Punct(op @ ("++" | "--")) => Ok((
                if op == "++" { "+=" } else { "-=" },
                Expr {
                    kind: ExprKind::Int(1),
                    span: t.span,
                },
            )),
            other => Err(Diagnostic::new(
                target.to(t.span),
                format!(
                    "expected an assignment to {what}, found {}",
                    describe(&other)
                ),
            )
            .hint("write @m[key] = value, @m[key] = count(), $x = value or @m++")),
        }
    }

    fn map_ref(&mut self) -> Result<MapRef, Diagnostic> {
        let t = self.next()?;
        let Tok::Map(name) = t.tok else {
            return Err(Diagnostic::new(t.span, "expected a map"));
        };
        let mut span = t.span;
        let mut keys = Vec::new();
        // `@m[` directly: a key list (a space before `[` is allowed, as in bpftrace).
        if self.eat("[")? {
            loop {
                keys.push(self.expr()?);
                if self.eat(",")? {
                    continue;
                }
                span = span.to(self.expect("]", "to end the map's keys")?);
                break;
            }
        }
        Ok(MapRef { name, keys, span })
    }

    fn expr(&mut self) -> Result<Expr, Diagnostic> {
        let at = self.peek(0)?.span;
        self.deeper(at)?;
        let cond = self.binary(0)?;
        let e = if self.eat("?")? {
            let then = self.expr()?;
            self.expect(":", "in `cond ? a : b`")?;
            let otherwise = self.expr()?;
            Expr {
                span: cond.span.to(otherwise.span),
                kind: ExprKind::Ternary {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    otherwise: Box::new(otherwise),
                },
            }
        } else {
            cond
        };
        self.depth -= 1;
        Ok(e)
    }

    fn binary(&mut self, level: usize) -> Result<Expr, Diagnostic> {
        let Some(ops) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut left = self.binary(level + 1)?;
        while let Tok::Punct(op) = self.peek(0)?.tok {
            if !ops.contains(&op) {
                break;
            }
            // In a filter, the `/` before `{` closes it.
            if op == "/" && self.in_predicate && self.is_punct(1, "{")? {
                break;
            }
            self.next()?;
            let right = self.binary(level + 1)?;
            left = Expr {
                span: left.span.to(right.span),
                kind: ExprKind::Binary {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                },
            };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, Diagnostic> {
        if let Tok::Punct(op @ ("!" | "~" | "-" | "*")) = self.peek(0)?.tok {
            let t = self.next()?;
            self.deeper(t.span)?;
            let operand = self.unary()?;
            self.depth -= 1;
            return Ok(Expr {
                span: t.span.to(operand.span),
                kind: ExprKind::Unary {
                    op,
                    operand: Box::new(operand),
                },
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, Diagnostic> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".")? || self.is_punct(0, "->")? {
                let ptr = self.eat("->")?;
                let f = self.next()?;
                let Tok::Ident(field) = f.tok else {
                    return Err(Diagnostic::new(
                        f.span,
                        format!("expected a field name, found {}", describe(&f.tok)),
                    ));
                };
                e = Expr {
                    span: e.span.to(f.span),
                    kind: ExprKind::Field {
                        base: Box::new(e),
                        field,
                        ptr,
                    },
                };
            } else if self.is_punct(0, "[")? {
                self.next()?;
                let index = self.expr()?;
                let close = self.expect("]", "to end the index")?;
                e = Expr {
                    span: e.span.to(close),
                    kind: ExprKind::Index {
                        base: Box::new(e),
                        index: Box::new(index),
                    },
                };
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, Diagnostic> {
        let t = self.peek(0)?.clone();
        let kind = match t.tok {
            Tok::Int(n) => {
                self.next()?;
                ExprKind::Int(n)
            }
            Tok::Str(s) => {
                self.next()?;
                ExprKind::Str(s)
            }
            Tok::Var(v) => {
                self.next()?;
                ExprKind::Var(v)
            }
            Tok::Map(_) => {
                let m = self.map_ref()?;
                return Ok(Expr {
                    span: m.span,
                    kind: ExprKind::Map(m),
                });
            }
            Tok::Ident(name) => {
                self.next()?;
                if self.eat("(")? {
                    let mut args = Vec::new();
                    let close = loop {
                        if self.is_punct(0, ")")? {
                            break self.next()?.span;
                        }
                        args.push(self.expr()?);
                        if !self.eat(",")? {
                            break self.expect(")", "to end the arguments")?;
                        }
                    };
                    return Ok(Expr {
                        span: t.span.to(close),
                        kind: ExprKind::Call { name, args },
                    });
                }
                ExprKind::Ident(name)
            }
            Tok::Punct("(") if matches!(&self.peek(1)?.tok, Tok::Ident(s) if s == "struct") => {
                // `(struct NAME *)operand`
                self.next()?;
                self.next()?;
                let n = self.next()?;
                let Tok::Ident(ty) = n.tok else {
                    return Err(Diagnostic::new(
                        n.span,
                        format!("expected a struct name, found {}", describe(&n.tok)),
                    ));
                };
                self.expect(
                    "*",
                    "after the struct name: casts are to pointers, (struct NAME *)",
                )?;
                self.expect(")", "to end the cast")?;
                self.deeper(t.span)?;
                let operand = self.unary()?;
                self.depth -= 1;
                return Ok(Expr {
                    span: t.span.to(operand.span),
                    kind: ExprKind::Cast {
                        ty,
                        operand: Box::new(operand),
                    },
                });
            }
            Tok::Punct("(") => {
                self.next()?;
                let e = self.expr()?;
                let close = self.expect(")", "to close `(`")?;
                return Ok(Expr {
                    span: t.span.to(close),
                    kind: e.kind,
                });
            }
            other => {
                return Err(Diagnostic::new(
                    t.span,
                    format!("expected an expression, found {}", describe(&other)),
                ));
            }
        };
        Ok(Expr { kind, span: t.span })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Program {
        parse(src).unwrap_or_else(|d| panic!("{}", d.render("-e", src)))
    }

    fn err(src: &str) -> String {
        match parse(src) {
            Ok(p) => panic!("parsed {src:?}: {p:?}"),
            Err(d) => d.render("-e", src),
        }
    }

    #[test]
    fn the_classic_one_liners_parse() {
        for src in [
            "BEGIN { printf(\"hello\\n\"); }",
            "tracepoint:syscalls:sys_enter_openat { printf(\"%s %s\\n\", comm, str(args.filename)); }",
            "tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }",
            "tracepoint:syscalls:sys_exit_read /args->ret/ { @[comm] = sum(args->ret); }",
            "tracepoint:syscalls:sys_exit_read { @[comm] = hist(args.ret); }",
            "kretprobe:vfs_read /pid == 181/ { @bytes = lhist(retval, 0, 2000, 200); }",
            "kprobe:vfs_read { @start[tid] = nsecs; } kretprobe:vfs_read /@start[tid]/ \
             { @ns[comm] = hist(nsecs - @start[tid]); delete(@start[tid]); }",
            "profile:hz:99 { @[kstack] = count(); }",
            "interval:s:1 { print(@); clear(@); }",
            "uprobe:/bin/bash:readline { @[comm] = count(); }",
            "kprobe:vfs_*, kprobe:do_sys_open* { @[func] = count(); }",
            "END { $x = 1; if ($x > 0) { printf(\"a\"); } else if ($x) { $x++; } else { $x -= 2; } }",
            "BEGIN { unroll (3) { @i++; } @m[1, \"a\"] = pid > 10 ? pid / 2 : -pid; }",
            "tracepoint:sched:sched_switch { @[args.prev_comm] = stats(curtask->pid); } // a comment",
        ] {
            ok(src);
        }
    }

    #[test]
    fn trees_keep_precedence_and_spans() {
        let p = ok("tracepoint:a:b /pid == 1 && 2 / 2 == 1/ { @x[comm, 1] = count(); }");
        assert_eq!(p.probes.len(), 1);
        let probe = &p.probes[0];
        assert_eq!(probe.points[0].provider(), "tracepoint");
        let Some(Expr {
            kind: ExprKind::Binary {
                op: "&&", right, ..
            },
            ..
        }) = &probe.predicate
        else {
            panic!("{:?}", probe.predicate);
        };
        // `2 / 2 == 1`: the division binds tighter, and this `/` is no end of the filter.
        assert!(
            matches!(&right.kind, ExprKind::Binary { op: "==", left, .. }
            if matches!(&left.kind, ExprKind::Binary { op: "/", .. }))
        );
        let Stmt::MapAssign { map, op, value, .. } = &probe.body[0] else {
            panic!("{:?}", probe.body);
        };
        assert_eq!((map.name.as_str(), map.keys.len(), *op), ("x", 2, "="));
        assert!(
            matches!(&value.kind, ExprKind::Call { name, args } if name == "count" && args.is_empty())
        );
        let src = "BEGIN { @x = 1 + 2; }";
        let p = ok(src);
        let Stmt::MapAssign { value, .. } = &p.probes[0].body[0] else {
            panic!()
        };
        assert_eq!(&src[value.span.start..value.span.end], "1 + 2");
    }

    #[test]
    fn syntax_errors_point_at_the_place() {
        assert_eq!(
            err("tracepoint:a:b { @[comm] = count() }}"),
            "error: expected a probe, found `}`\n \
             --> -e:1:37\n  |\n1 | tracepoint:a:b { @[comm] = count() }}\n  \
             |                                     ^\n  \
             = help: probes are written like tracepoint:syscalls:sys_enter_openat, kprobe:vfs_read, BEGIN\n"
        );
        assert!(err("BEGIN { @x = ; }").contains("expected an expression, found `;`"));
        assert!(
            err("BEGIN { @x = 1 @y = 2; }").contains("expected `;` between statements, found `@y`")
        );
        assert!(err("BEGIN { @x[1 = 2; }").contains("expected `]` to end the map's keys"));
        assert!(err("BEGIN { printf(\"a\" }").contains("expected `)` to end the arguments"));
        assert!(err("BEGIN { @x = 1;").contains("this block is never closed"));
        assert!(err("kprobe:f /pid == 1 { }").contains("expected `/` to end the filter"));
        assert!(
            err("kprobe:f @x = 1;")
                .contains("expected `{` to start the probe's actions, found `@x`")
        );
        assert!(err("").contains("the program has no probe"));
        assert!(err("BEGIN { @x }").contains("expected an assignment to a map"));
        assert!(err("BEGIN { unroll (n) { } }").contains("`unroll` takes a number"));
        ok(&format!(
            "BEGIN {{ @x = {}1{}; }}",
            "(".repeat(30),
            ")".repeat(30)
        ));
        let deep = format!("BEGIN {{ @x = {}1{}; }}", "(".repeat(200), ")".repeat(200));
        assert!(err(&deep).contains("nested more than 32 deep"));
    }
}

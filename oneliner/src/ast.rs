//! The syntax tree of a program, every node with its span, as the parser reads it (nothing is
//! checked against a kernel yet).

use crate::diagnostic::Span;

/// A whole program: its probes in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// The probes, as written.
    pub probes: Vec<Probe>,
}

/// One probe: where it attaches (one or more points), an optional filter, and its actions.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The attach points of a `,`-joined list (`kprobe:a, kprobe:b`).
    pub points: Vec<AttachPoint>,
    /// `/pred/`.
    pub predicate: Option<Expr>,
    /// The block.
    pub body: Vec<Stmt>,
}

/// An attach point as written: `tracepoint:syscalls:sys_enter_openat`, its `:`-separated parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachPoint {
    /// The whole word.
    pub text: String,
    /// Where it is.
    pub span: Span,
}

impl AttachPoint {
    /// The provider (`tracepoint`, `kprobe`, `BEGIN`, ...): the text before the first `:`.
    pub fn provider(&self) -> &str {
        self.text.split(':').next().unwrap_or("")
    }
}

/// A statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `@map[keys] = value`, `@map[keys] += value` (`op` is `=` or the operator before it).
    MapAssign {
        /// The map and its keys.
        map: MapRef,
        /// `=`, `+=`, `-=`, ...
        op: &'static str,
        /// The value (for `++`/`--`, the literal 1).
        value: Expr,
        /// The whole statement.
        span: Span,
    },
    /// `$x = value` (or `$x += value`).
    VarAssign {
        /// The variable's name.
        name: String,
        /// `=`, `+=`, ...
        op: &'static str,
        /// The value.
        value: Expr,
        /// The whole statement.
        span: Span,
    },
    /// An expression evaluated for its effect: a call (`printf(...)`, `delete(@m[k])`).
    Expr(Expr),
    /// `if (cond) { ... } else { ... }`.
    If {
        /// The condition.
        cond: Expr,
        /// Then.
        then: Vec<Stmt>,
        /// Else (an `else if` is an `If` inside).
        otherwise: Vec<Stmt>,
        /// The `if` keyword.
        span: Span,
    },
    /// `unroll (N) { ... }`.
    Unroll {
        /// How many times.
        count: u64,
        /// The block.
        body: Vec<Stmt>,
        /// The `unroll` keyword and count.
        span: Span,
    },
}

/// A map with its keys: `@name[k1, k2]`, `@name`, `@[k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MapRef {
    /// The name without `@` (empty for `@`).
    pub name: String,
    /// The keys.
    pub keys: Vec<Expr>,
    /// The `@name[...]` text.
    pub span: Span,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where.
    pub span: Span,
}

/// The kinds of expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// An integer literal.
    Int(u64),
    /// A string literal.
    Str(String),
    /// A builtin or a bare name (`pid`, `comm`, `args`, `arg0`, `retval`).
    Ident(String),
    /// `$x`.
    Var(String),
    /// A map read: `@m[k]`.
    Map(MapRef),
    /// `f(args)`.
    Call {
        /// The function's name.
        name: String,
        /// Its arguments.
        args: Vec<Expr>,
    },
    /// `base.field` (`ptr` false) or `base->field` (`ptr` true).
    Field {
        /// The struct or pointer.
        base: Box<Expr>,
        /// The member.
        field: String,
        /// Written with `->`.
        ptr: bool,
    },
    /// `base[index]`.
    Index {
        /// The array or pointer.
        base: Box<Expr>,
        /// The index.
        index: Box<Expr>,
    },
    /// `op operand`: `!`, `~`, `-`, `*` (dereference).
    Unary {
        /// The operator.
        op: &'static str,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `left op right`.
    Binary {
        /// The operator (`+`, `==`, `&&`, ...).
        op: &'static str,
        /// Left side.
        left: Box<Expr>,
        /// Right side.
        right: Box<Expr>,
    },
    /// `(struct NAME *)operand`: a kernel pointer of a known struct type, for `->`.
    Cast {
        /// The struct's name (`task_struct`).
        ty: String,
        /// What is cast.
        operand: Box<Expr>,
    },
    /// `cond ? a : b`.
    Ternary {
        /// The condition.
        cond: Box<Expr>,
        /// When true.
        then: Box<Expr>,
        /// When false.
        otherwise: Box<Expr>,
    },
}

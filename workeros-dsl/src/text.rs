//! The text form, parsed with nom: `owner_id = $user.id && (status in ["a", "b"] || views > 10)`.
//!
//! Grammar (whitespace between tokens is free):
//!
//! ```text
//! filter     := and (("||" | "or") and)*
//! and        := unary (("&&" | "and") unary)*
//! unary      := ("!" | "not") unary | "(" filter ")" | "true" | "false" | comparison
//! comparison := field ( ("=" | "!=" | "<" | "<=" | ">" | ">=") value
//!                     | "not"? "in" value
//!                     | "is" "not"? ("null" | "empty")
//!                     | "not"? ("contains" | "icontains" | "starts_with" | "istarts_with"
//!                              | "ends_with" | "iends_with") value
//!                     | "not"? "between" value "and" value
//!                     | "matches" value )
//! value      := string | number | "true" | "false" | list | variable
//! list       := "[" (value ("," value)* ","?)? "]"
//! variable   := "$user.id" | "$user.email" | "$user.roles" | "$user." field | "$tenant.id"
//!             | "$now" ("(" ("+" | "-")? digits unit ")")?
//! ```

use crate::ast::{Comparison, Filter, Ident, Op, Operand, Shift, Unit, Value, Var, is_ident_char};
use crate::error::{DslError, Loc};
use crate::limits::{MAX_DEPTH, MAX_LIST_LEN, MAX_NODES, MAX_STRING_LEN, MAX_TEXT_LEN};
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, digit1, one_of, satisfy};
use nom::combinator::{opt, recognize};
use nom::{IResult, Parser as _};

type R<'a, T> = Result<(&'a str, T), DslError>;

/// Most `!` and `(` the parser descends through (twice the depth limit: every tree within the
/// depth limit prints within it).
const MAX_NESTING: usize = 2 * MAX_DEPTH;

/// The error for a list given as a bound of `between`, in both forms.
pub(crate) const BOUND_NOT_LIST: &str = "the bounds of `between` are single values, not lists";

/// Most units `$now(...)` may shift by.
pub(crate) const MAX_SHIFT: i64 = 1_000_000;

/// Parses the text form.
///
/// ```
/// use workeros_dsl::{Filter, parse};
/// let f = parse(r#"status = "draft" && views > 10"#)?;
/// assert!(matches!(f, Filter::And(_)));
/// assert!(parse("status == 1").is_err());
/// # Ok::<(), workeros_dsl::DslError>(())
/// ```
pub fn parse(src: &str) -> Result<Filter, DslError> {
    if src.len() > MAX_TEXT_LEN {
        return Err(DslError::limit(
            format!(
                "the filter is {} bytes long; at most {MAX_TEXT_LEN} are allowed",
                src.len()
            ),
            Loc::None,
        ));
    }
    let p = Parser::new(src);
    let (rest, f) = p.or_expr(src, 0)?;
    let rest = ws(rest);
    if !rest.is_empty() {
        return Err(p
            .err(rest, "expected `&&`, `||` or the end of the filter")
            .found(token(rest)));
    }
    check_shape(&f, &Loc::None)?;
    Ok(f)
}

/// Checks the depth and node limits of a parsed tree.
pub(crate) fn check_shape(f: &Filter, loc: &Loc) -> Result<(), DslError> {
    let (depth, n) = f.shape();
    if depth > MAX_DEPTH {
        return Err(DslError::limit(
            format!("the filter nests deeper than {MAX_DEPTH} levels"),
            loc.clone(),
        ));
    }
    if n > MAX_NODES {
        return Err(DslError::limit(
            format!("the filter has {n} nodes; at most {MAX_NODES} are allowed"),
            loc.clone(),
        ));
    }
    Ok(())
}

fn ws(i: &str) -> &str {
    // The same set as nom's `multispace0`, without the generic machinery on the hot path.
    i.trim_start_matches([' ', '\t', '\n', '\r'])
}

fn ident(i: &str) -> IResult<&str, &str> {
    recognize((
        satisfy(crate::ast::is_ident_start),
        take_while(is_ident_char),
    ))
    .parse(i)
}

fn number(i: &str) -> IResult<&str, &str> {
    recognize((
        opt(char('-')),
        digit1,
        opt((char('.'), digit1)),
        opt((one_of("eE"), opt(one_of("+-")), digit1)),
    ))
    .parse(i)
}

fn symbol_run(i: &str) -> IResult<&str, &str> {
    take_while1(|c| matches!(c, '=' | '!' | '<' | '>')).parse(i)
}

fn and_sep(i: &str) -> IResult<&str, &str> {
    alt((tag("&&"), keyword("and"))).parse(i)
}

fn or_sep(i: &str) -> IResult<&str, &str> {
    alt((tag("||"), keyword("or"))).parse(i)
}

/// A keyword: `word` not followed by an identifier character.
fn keyword<'a>(word: &'static str) -> impl Fn(&'a str) -> IResult<&'a str, &'a str> {
    move |i: &'a str| {
        let (rest, w) = ident(i)?;
        if w == word {
            Ok((rest, w))
        } else {
            Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Tag,
            )))
        }
    }
}

/// The next token, for "found `..`" in messages.
fn token(i: &str) -> String {
    let i = ws(i);
    if i.is_empty() {
        return "the end".into();
    }
    if let Ok((_, w)) = ident(i) {
        return w.into();
    }
    if let Ok((_, s)) = symbol_run(i) {
        return s.into();
    }
    if let Ok((_, n)) = number(i) {
        return n.into();
    }
    i.chars().next().map(String::from).unwrap_or_default()
}

struct Parser<'s> {
    src: &'s str,
    /// The last location computed (offset, line, column): comparisons come in source order, so
    /// each location is found by scanning on from the previous one, not from the start.
    cursor: std::cell::Cell<(usize, u32, u32)>,
    /// One line of ASCII (the common case): the column is the byte offset plus one.
    flat: bool,
}

impl<'s> Parser<'s> {
    fn new(src: &'s str) -> Self {
        Self {
            src,
            cursor: std::cell::Cell::new((0, 1, 1)),
            flat: src.is_ascii() && !src.contains('\n'),
        }
    }

    fn loc(&self, rest: &str) -> Loc {
        let offset = self.src.len().saturating_sub(rest.len());
        if self.flat {
            return Loc::Text {
                line: 1,
                column: u32::try_from(offset + 1).unwrap_or(u32::MAX),
                offset,
            };
        }
        let (at, mut line, mut column) = self.cursor.get();
        let Some(between) = self.src.get(at..offset) else {
            return Loc::in_text(self.src, offset);
        };
        let chars = |b: &[u8]| b.iter().filter(|&&c| (c & 0xC0) != 0x80).count();
        let bytes = between.as_bytes();
        match memchr::memrchr(b'\n', bytes) {
            None => column += u32::try_from(chars(bytes)).unwrap_or(u32::MAX),
            Some(last) => {
                let newlines = memchr::memchr_iter(b'\n', bytes).count();
                line += u32::try_from(newlines).unwrap_or(u32::MAX);
                column = 1 + u32::try_from(chars(bytes.get(last + 1..).unwrap_or(&[])))
                    .unwrap_or(u32::MAX);
            }
        }
        self.cursor.set((offset, line, column));
        Loc::Text {
            line,
            column,
            offset,
        }
    }

    fn err(&self, rest: &str, msg: impl Into<String>) -> DslError {
        DslError::syntax(msg, self.loc(rest))
    }

    fn or_expr<'a>(&self, i: &'a str, nest: usize) -> R<'a, Filter> {
        let (mut i, first) = self.and_expr(i, nest)?;
        // A lone operand needs no list.
        let Ok((mut next, _)) = or_sep(ws(i)) else {
            return Ok((i, first));
        };
        let mut items = Vec::with_capacity(8);
        items.push(first);
        loop {
            let (rest, f) = self.and_expr(next, nest)?;
            items.push(f);
            i = rest;
            if items.len() > MAX_NODES {
                return Err(DslError::limit(
                    format!("the filter has more than {MAX_NODES} nodes"),
                    self.loc(i),
                ));
            }
            match or_sep(ws(i)) {
                Ok((rest, _)) => next = rest,
                Err(_) => break,
            }
        }
        Ok((i, Filter::or(items)))
    }

    fn and_expr<'a>(&self, i: &'a str, nest: usize) -> R<'a, Filter> {
        let (mut i, first) = self.unary(i, nest)?;
        // A lone operand needs no list.
        let Ok((mut next, _)) = and_sep(ws(i)) else {
            return Ok((i, first));
        };
        let mut items = Vec::with_capacity(8);
        items.push(first);
        loop {
            let (rest, f) = self.unary(next, nest)?;
            items.push(f);
            i = rest;
            if items.len() > MAX_NODES {
                return Err(DslError::limit(
                    format!("the filter has more than {MAX_NODES} nodes"),
                    self.loc(i),
                ));
            }
            match and_sep(ws(i)) {
                Ok((rest, _)) => next = rest,
                Err(_) => break,
            }
        }
        Ok((i, Filter::and(items)))
    }

    fn unary<'a>(&self, i: &'a str, nest: usize) -> R<'a, Filter> {
        let i = ws(i);
        // A guard on recursion (each `!` and `(` is a frame), not the depth limit itself:
        // parentheses add frames but not depth (`!(a = 1)` is depth 2 in 2 frames, and the printer
        // writes such forms), so the tree's depth is checked after parsing.
        if nest >= MAX_NESTING {
            return Err(DslError::limit(
                format!("the filter nests deeper than {MAX_DEPTH} levels"),
                self.loc(i),
            ));
        }
        if let Some(rest) = i.strip_prefix('!') {
            let (rest, f) = self.unary(rest, nest + 1)?;
            return Ok((rest, Filter::Not(Box::new(f))));
        }
        if let Some(rest) = i.strip_prefix('(') {
            let (rest, f) = self.or_expr(rest, nest + 1)?;
            let rest = ws(rest);
            return match rest.strip_prefix(')') {
                Some(rest) => Ok((rest, f)),
                None => Err(self
                    .err(rest, "expected `)` to close the group")
                    .found(token(rest))),
            };
        }
        let Ok((after, word)) = ident(i) else {
            return Err(self.err(i, "expected a filter").found(token(i)));
        };
        match word {
            "not" => {
                let (rest, f) = self.unary(after, nest + 1)?;
                Ok((rest, Filter::Not(Box::new(f))))
            }
            "true" => Ok((after, Filter::Const(true))),
            "false" => Ok((after, Filter::Const(false))),
            _ => self.comparison(i, word, after),
        }
    }

    fn comparison<'a>(&self, start: &'a str, word: &str, after: &'a str) -> R<'a, Filter> {
        let loc = self.loc(start);
        let field = Ident::lexed(word, &loc)?;
        let i = ws(after);
        let expected = || {
            self.err(i, format!("expected an operator after field `{word}`"))
                .found(token(i))
        };
        let (i, op) = if let Ok((rest, sym)) = symbol_run(i) {
            let op = match sym {
                "=" => Op::Eq,
                "!=" => Op::Neq,
                "<" => Op::Lt,
                "<=" => Op::Lte,
                ">" => Op::Gt,
                ">=" => Op::Gte,
                _ => {
                    let help = if sym == "==" {
                        "use `=` to compare"
                    } else {
                        "comparisons are = != < <= > >="
                    };
                    return Err(expected().with_help(help));
                }
            };
            (rest, op)
        } else if let Ok((rest, w)) = ident(i) {
            match w {
                "is" => {
                    let j = ws(rest);
                    let (j, negated) = match keyword("not")(j) {
                        Ok((j, _)) => (ws(j), true),
                        Err(_) => (j, false),
                    };
                    let op = match ident(j) {
                        Ok((k, "null")) => (k, if negated { Op::NNull } else { Op::Null }),
                        Ok((k, "empty")) => (k, if negated { Op::NEmpty } else { Op::Empty }),
                        _ => {
                            return Err(self
                                .err(j, "expected `null` or `empty` after `is`")
                                .found(token(j)));
                        }
                    };
                    return Ok((op.0, Filter::Cmp(cmp(field, op.1, Operand::None, loc))));
                }
                "not" => {
                    let j = ws(rest);
                    let op = ident(j)
                        .ok()
                        .and_then(|(k, w)| word_op(w).and_then(|op| op.negated().map(|n| (k, n))));
                    match op {
                        Some(found) => found,
                        None => {
                            return Err(self
                                .err(j, format!("expected an operator after `{word} not`"))
                                .found(token(j))
                                .with_help("`not` goes with in, contains, icontains, starts_with, istarts_with, ends_with, iends_with, between"));
                        }
                    }
                }
                w => match word_op(w) {
                    Some(op) => (rest, op),
                    None => return Err(expected()),
                },
            }
        } else {
            return Err(expected());
        };
        let (i, arg) = if matches!(op, Op::Between | Op::NBetween) {
            let (i, a) = self.bound(i)?;
            let j = ws(i);
            let Ok((j, _)) = keyword("and")(j) else {
                return Err(self
                    .err(j, "expected `and` between the bounds of `between`")
                    .found(token(j)));
            };
            let (j, b) = self.bound(j)?;
            (j, Operand::Two(a, b))
        } else {
            let (i, v) = self.value(i)?;
            (i, Operand::One(v))
        };
        Ok((i, Filter::Cmp(cmp(field, op, arg, loc))))
    }

    fn value<'a>(&self, i: &'a str) -> R<'a, Value> {
        self.value_in(i, false)
    }

    /// A bound of `between`: a single value, never a list (as in the JSON form).
    fn bound<'a>(&self, i: &'a str) -> R<'a, Value> {
        let start = ws(i);
        let (rest, v) = self.value(i)?;
        if matches!(v, Value::List(_)) {
            return Err(self.err(start, BOUND_NOT_LIST));
        }
        Ok((rest, v))
    }

    fn value_in<'a>(&self, i: &'a str, in_list: bool) -> R<'a, Value> {
        let i = ws(i);
        let Some(c) = i.chars().next() else {
            return Err(self.err(i, "expected a value").found("the end"));
        };
        match c {
            '"' | '\'' => {
                let (rest, s) = self.string(i, c)?;
                Ok((rest, Value::Str(s)))
            }
            '[' if !in_list => self.list(i),
            '[' => Err(self.err(i, "lists cannot be nested")),
            '$' => {
                let (rest, v) = variable(i).map_err(|msg| self.err(i, msg))?;
                Ok((rest, Value::Var(v)))
            }
            '-' | '0'..='9' => {
                let Ok((rest, n)) = number(i) else {
                    return Err(self.err(i, "expected a number").found(token(i)));
                };
                let v = parse_number(n).map_err(|m| self.err(i, m))?;
                Ok((rest, v))
            }
            _ => match ident(i) {
                Ok((rest, "true")) => Ok((rest, Value::Bool(true))),
                Ok((rest, "false")) => Ok((rest, Value::Bool(false))),
                Ok((_, "null")) => Err(self
                    .err(i, "a literal `null` cannot be compared")
                    .with_help("use `is null` or `is not null`")),
                _ => Err(self.err(i, "expected a value").found(token(i))),
            },
        }
    }

    fn list<'a>(&self, i: &'a str) -> R<'a, Value> {
        let mut i = ws(i.get(1..).unwrap_or(""));
        let mut items = Vec::new();
        loop {
            if let Some(rest) = i.strip_prefix(']') {
                return Ok((rest, Value::List(items)));
            }
            if items.len() >= MAX_LIST_LEN {
                return Err(DslError::limit(
                    format!("a list has more than {MAX_LIST_LEN} items"),
                    self.loc(i),
                ));
            }
            let (rest, v) = self.value_in(i, true)?;
            items.push(v);
            let rest = ws(rest);
            if let Some(rest) = rest.strip_prefix(',') {
                i = ws(rest);
            } else if rest.starts_with(']') {
                i = rest;
            } else {
                return Err(self
                    .err(rest, "expected `,` or `]` in the list")
                    .found(token(rest)));
            }
        }
    }

    fn string<'a>(&self, i: &'a str, quote: char) -> R<'a, smol_str::SmolStr> {
        let body = i.get(1..).unwrap_or("");
        // Fast path: no escape before the closing quote.
        // Quotes are ASCII, so a byte search finds them (UTF-8 continuation bytes never match).
        if let Some(end) = memchr::memchr2(quote as u8, b'\\', body.as_bytes()) {
            let lit = body.get(..end).unwrap_or("");
            if body.get(end..).is_some_and(|r| r.starts_with(quote))
                && lit.len() <= MAX_STRING_LEN
                && !crate::ast::has_nul(lit)
            {
                return Ok((body.get(end + 1..).unwrap_or(""), lit.into()));
            }
        }
        let mut out = String::new();
        let mut chars = i.char_indices().skip(1);
        while let Some((at, c)) = chars.next() {
            let here = i.get(at..).unwrap_or("");
            match c {
                c if c == quote => {
                    let rest = i.get(at + c.len_utf8()..).unwrap_or("");
                    return Ok((rest, out.into()));
                }
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    match e {
                        '"' => out.push('"'),
                        '\'' => out.push('\''),
                        '\\' => out.push('\\'),
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'u' => {
                            let body = here.get(2..).unwrap_or("");
                            let Some(inner) = body.strip_prefix('{') else {
                                return Err(self.err(here, "expected `{` after `\\u`"));
                            };
                            let hex: String =
                                inner.chars().take_while(char::is_ascii_hexdigit).collect();
                            let closed = inner.get(hex.len()..).is_some_and(|r| r.starts_with('}'));
                            let ch = u32::from_str_radix(&hex, 16)
                                .ok()
                                .filter(|_| closed && (1..=6).contains(&hex.len()))
                                .and_then(char::from_u32);
                            match ch {
                                Some('\0') => {
                                    return Err(self.err(here, "strings cannot contain NUL"));
                                }
                                Some(ch) => out.push(ch),
                                None => {
                                    return Err(self
                                        .err(here, "invalid `\\u{..}` escape")
                                        .with_help("write 1 to 6 hex digits of a Unicode scalar value, as in `\\u{e9}`"));
                                }
                            }
                            for _ in 0..hex.len() + 2 {
                                chars.next();
                            }
                        }
                        other => {
                            return Err(self
                                .err(here, format!("unknown escape `\\{other}`"))
                                .with_help("escapes are \\\" \\' \\\\ \\n \\t \\r \\u{..}"));
                        }
                    }
                }
                '\0' => return Err(self.err(here, "strings cannot contain NUL")),
                c => out.push(c),
            }
            if out.len() > MAX_STRING_LEN {
                return Err(DslError::limit(
                    format!("a string is longer than {MAX_STRING_LEN} bytes"),
                    self.loc(i),
                ));
            }
        }
        Err(self.err(i, "unterminated string"))
    }
}

fn cmp(field: Ident, op: Op, arg: Operand, loc: Loc) -> Comparison {
    Comparison {
        field,
        op,
        arg,
        loc,
    }
}

/// The operator spelled as one word (`in`, `contains`, `between`, `matches`, …).
fn word_op(w: &str) -> Option<Op> {
    Some(match w {
        "in" => Op::In,
        "contains" => Op::Contains,
        "icontains" => Op::IContains,
        "starts_with" => Op::StartsWith,
        "istarts_with" => Op::IStartsWith,
        "ends_with" => Op::EndsWith,
        "iends_with" => Op::IEndsWith,
        "between" => Op::Between,
        "matches" => Op::Regex,
        _ => return None,
    })
}

/// Parses a number literal: an integer when it has no `.` or exponent.
pub(crate) fn parse_number(n: &str) -> Result<Value, String> {
    if n.contains(['.', 'e', 'E']) {
        match n.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(format!(
                "number `{}` is out of range",
                crate::error::clip(n)
            )),
        }
    } else {
        n.parse::<i64>().map(Value::Int).map_err(|_| {
            format!(
                "integer `{}` is out of range (64-bit signed)",
                crate::error::clip(n)
            )
        })
    }
}

/// Parses a variable at the start of `i` (canonical and Directus spellings). The error is a
/// message; the caller adds the location.
pub(crate) fn variable(i: &str) -> Result<(&str, Var), String> {
    if let Some(common) = common_variable(i) {
        return Ok(common);
    }
    let body = i.strip_prefix('$').ok_or("expected a variable")?;
    let (rest, head) = ident(body).map_err(|_| unknown_var(i))?;
    fn dotted(rest: &str) -> Option<(&str, &str)> {
        ident(rest.strip_prefix('.')?).ok()
    }
    match head {
        "user" | "CURRENT_USER" => match dotted(rest) {
            Some((r, "id")) => Ok((r, Var::UserId)),
            Some((r, "email")) => Ok((r, Var::UserEmail)),
            Some((r, "roles")) => Ok((r, Var::UserRoles)),
            Some((r, attr)) => Ok((
                r,
                Var::UserAttr(Ident::new(attr).map_err(|e| e.to_string())?),
            )),
            None if head == "CURRENT_USER" => Ok((rest, Var::UserId)),
            None => {
                Err("expected `.id`, `.email`, `.roles` or `.<attribute>` after `$user`".into())
            }
        },
        "tenant" => match dotted(rest) {
            Some((r, "id")) => Ok((r, Var::TenantId)),
            _ => Err("expected `.id` after `$tenant`".into()),
        },
        "CURRENT_ROLES" => Ok((rest, Var::UserRoles)),
        "now" | "NOW" => {
            let Some(inner) = rest.strip_prefix('(') else {
                return Ok((rest, Var::Now(None)));
            };
            let (shift, rest) = now_shift(inner).ok_or_else(|| {
                "expected an adjustment such as `$now(-1 day)` or `$now(+2 hours)`".to_string()
            })?;
            Ok((rest, Var::Now(Some(shift))))
        }
        _ => Err(unknown_var(i)),
    }
}

/// The spellings most filters use, read without the general path: the whole word, followed by
/// something that cannot continue it (not an identifier character, `.` or `(`).
fn common_variable(i: &str) -> Option<(&str, Var)> {
    const COMMON: [(&str, Var); 6] = [
        ("$user.id", Var::UserId),
        ("$user.email", Var::UserEmail),
        ("$user.roles", Var::UserRoles),
        ("$tenant.id", Var::TenantId),
        ("$now", Var::Now(None)),
        ("$NOW", Var::Now(None)),
    ];
    COMMON.into_iter().find_map(|(word, var)| {
        let rest = i.strip_prefix(word)?;
        (!rest.starts_with(|c: char| is_ident_char(c) || c == '.' || c == '('))
            .then_some((rest, var))
    })
}

fn unknown_var(i: &str) -> String {
    format!(
        "unknown variable `{}`",
        crate::error::clip(
            i.split(|c: char| c.is_whitespace() || c == ')')
                .next()
                .unwrap_or(i)
        )
    ) + "; variables are $user.id, $user.email, $user.roles, $user.<attribute>, $tenant.id, $now"
}

fn now_shift(i: &str) -> Option<(Shift, &str)> {
    let i = ws(i);
    let (i, sign) = match i.chars().next()? {
        '+' => (i.get(1..)?, 1),
        '-' => (i.get(1..)?, -1),
        _ => (i, 1),
    };
    let i = ws(i);
    let n = i.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, i) = (i.get(..n)?, i.get(n..)?);
    // `parse` sees only ASCII digits (none: an error; too many: an overflow error).
    let amount = digits.parse::<i64>().ok().filter(|a| *a <= MAX_SHIFT)? * sign;
    let (i, unit) = ident(ws(i)).ok()?;
    let unit = Unit::from_name(unit)?;
    let i = ws(i).strip_prefix(')')?;
    Some((Shift { amount, unit }, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp_of(f: &Filter) -> &Comparison {
        match f {
            Filter::Cmp(c) => c,
            other => panic!("not a comparison: {other:?}"),
        }
    }

    #[test]
    fn operators() {
        let cases = [
            ("a = 1", Op::Eq),
            ("a != 1", Op::Neq),
            ("a < 1", Op::Lt),
            ("a <= 1", Op::Lte),
            ("a > 1", Op::Gt),
            ("a >= 1", Op::Gte),
            ("a in [1, 2]", Op::In),
            ("a not in [1]", Op::Nin),
            ("a is null", Op::Null),
            ("a is not null", Op::NNull),
            ("a is empty", Op::Empty),
            ("a is not empty", Op::NEmpty),
            ("a contains 'x'", Op::Contains),
            ("a not contains 'x'", Op::NContains),
            ("a icontains 'x'", Op::IContains),
            ("a not icontains 'x'", Op::NIContains),
            ("a starts_with 'x'", Op::StartsWith),
            ("a not starts_with 'x'", Op::NStartsWith),
            ("a istarts_with 'x'", Op::IStartsWith),
            ("a not istarts_with 'x'", Op::NIStartsWith),
            ("a ends_with 'x'", Op::EndsWith),
            ("a not ends_with 'x'", Op::NEndsWith),
            ("a iends_with 'x'", Op::IEndsWith),
            ("a not iends_with 'x'", Op::NIEndsWith),
            ("a between 1 and 2", Op::Between),
            ("a not between 1 and 2", Op::NBetween),
            ("a matches '^x'", Op::Regex),
        ];
        for (src, op) in cases {
            let f = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(cmp_of(&f).op, op, "{src}");
        }
        assert_eq!(cases.len(), Op::ALL.len());
    }

    #[test]
    fn precedence_and_keywords() {
        let f = parse("a = 1 || b = 2 && c = 3").unwrap();
        let Filter::Or(items) = &f else { panic!() };
        assert!(matches!(items[1], Filter::And(_)));
        let f = parse("not a = 1 and b = 2").unwrap();
        let Filter::And(items) = &f else { panic!() };
        assert!(matches!(items[0], Filter::Not(_)));
        // `android` is a field, not `and` + `roid`.
        assert!(parse("x = 1 android = 2").is_err());
        let f = parse("android = 1 and orange = 2").unwrap();
        assert!(matches!(f, Filter::And(_)));
        assert_eq!(parse("true").unwrap(), Filter::Const(true));
        assert_eq!(
            parse("!false").unwrap(),
            Filter::Not(Box::new(Filter::Const(false)))
        );
    }

    #[test]
    fn values() {
        let f =
            parse(r#"a in ["x\"y", 'it\'s', -5, 1.5, 1e3, true, $user.id, "\u{e9}\n"]"#).unwrap();
        let Operand::One(Value::List(items)) = &cmp_of(&f).arg else {
            panic!()
        };
        assert_eq!(items[0], Value::Str("x\"y".into()));
        assert_eq!(items[1], Value::Str("it's".into()));
        assert_eq!(items[2], Value::Int(-5));
        assert_eq!(items[3], Value::Float(1.5));
        assert_eq!(items[4], Value::Float(1000.0));
        assert_eq!(items[5], Value::Bool(true));
        assert_eq!(items[6], Value::Var(Var::UserId));
        assert_eq!(items[7], Value::Str("é\n".into()));
    }

    #[test]
    fn variables() {
        let cases = [
            ("$user.id", Var::UserId),
            ("$user.email", Var::UserEmail),
            ("$user.roles", Var::UserRoles),
            ("$user.team", Var::UserAttr(Ident::new("team").unwrap())),
            ("$tenant.id", Var::TenantId),
            ("$now", Var::Now(None)),
            (
                "$now(-1 day)",
                Var::Now(Some(Shift {
                    amount: -1,
                    unit: Unit::Day,
                })),
            ),
            (
                "$now( +2 hours )",
                Var::Now(Some(Shift {
                    amount: 2,
                    unit: Unit::Hour,
                })),
            ),
            (
                "$now(3 years)",
                Var::Now(Some(Shift {
                    amount: 3,
                    unit: Unit::Year,
                })),
            ),
        ];
        for (src, var) in cases {
            let f = parse(&format!("a = {src}")).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(cmp_of(&f).arg, Operand::One(Value::Var(var)), "{src}");
        }
        for bad in [
            "$foo",
            "$user",
            "$tenant.x",
            "$now(1 fortnight)",
            "$now(-1 day",
            "$now(9999999 days)",
        ] {
            assert!(parse(&format!("a = {bad}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_positions() {
        let e = parse(r#"status == "x""#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "expected an operator after field `status` at 1:8, found `==` (use `=` to compare)"
        );
        let e = parse("a = 1 &&\n  b = null").unwrap_err();
        assert!(e.to_string().contains("at 2:7"), "{e}");
        assert!(e.help().is_some_and(|h| h.contains("is null")));
        let e = parse("a = 'open").unwrap_err();
        assert!(e.to_string().contains("unterminated string at 1:5"), "{e}");
        let e = parse("a = 1 b = 2").unwrap_err();
        assert!(e.to_string().contains("found `b`"), "{e}");
        assert!(parse("not = 1").is_err());
        assert!(parse("a = 99999999999999999999").is_err());
        assert!(parse("a = 1e999").is_err());
        assert!(parse("a = [1, [2]]").is_err());
        assert!(parse("a = \"\\u{0}\"").is_err());
        assert!(parse("a = \"\\u{d800}\"").is_err());
        assert!(parse("").is_err());
        assert!(parse("(a = 1").is_err());
    }

    #[test]
    fn limits() {
        // Parentheses alone add no depth, but recursion is bounded all the same.
        let parens = format!("{}a = 1{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&parens).is_ok());
        let deep = format!("{}a = 1{}", "(".repeat(70), ")".repeat(70));
        assert_eq!(parse(&deep).unwrap_err().kind(), crate::ErrorKind::Limit);
        let nots = format!("{}a = 1", "!".repeat(10_000));
        assert_eq!(parse(&nots).unwrap_err().kind(), crate::ErrorKind::Limit);
        let wide = vec!["a = 1"; 600].join(" && ");
        assert_eq!(parse(&wide).unwrap_err().kind(), crate::ErrorKind::Limit);
        let list = format!("a in [{}]", vec!["1"; 1001].join(","));
        assert_eq!(parse(&list).unwrap_err().kind(), crate::ErrorKind::Limit);
        let long = format!("a = \"{}\"", "x".repeat(5000));
        assert_eq!(parse(&long).unwrap_err().kind(), crate::ErrorKind::Limit);
        let huge = " ".repeat(MAX_TEXT_LEN + 1);
        assert_eq!(parse(&huge).unwrap_err().kind(), crate::ErrorKind::Limit);
    }
}

//! The JSON form (Directus-compatible): `{"_and": [{"owner_id": {"_eq": "$user.id"}}, ...]}`.

use crate::ast::{Comparison, Filter, Ident, Op, Operand, Value};
use crate::error::{DslError, Loc, clip};
use crate::limits::{MAX_DEPTH, MAX_JSON_LEN, MAX_LIST_LEN, MAX_STRING_LEN, MAX_TEXT_LEN};
use crate::text::{check_shape, variable};
use serde_json::Value as Json;

/// Parses the JSON form from a JSON value.
///
/// Several keys in one object are AND-ed, and so are several operators on one field. `{}` and
/// `{"_and": []}` are `true`; `{"_or": []}` is `false`. The Directus variable spellings
/// (`$CURRENT_USER`, `$CURRENT_ROLES`, `$NOW(-1 day)`) are accepted.
///
/// A string value that spells a variable is that variable; one that starts like a variable but
/// is not one (`$user.`, `$tenant.`, `$now…`, `$CURRENT_…`) is an error; other strings are
/// literals. `$$` at the start escapes a literal `$` (`"$$user.id"` is the text `$user.id`), and
/// [`Filter::to_json`] writes literals that way.
///
/// ```
/// use workeros_dsl::{from_json, parse};
/// let json = serde_json::json!({"status": {"_in": ["draft", "published"]}, "views": {"_gt": 10}});
/// assert_eq!(from_json(&json)?, parse(r#"status in ["draft", "published"] && views > 10"#)?);
/// # Ok::<(), workeros_dsl::DslError>(())
/// ```
pub fn from_json(v: &Json) -> Result<Filter, DslError> {
    text_limit(v)?;
    let mut path = Path(String::with_capacity(64));
    let f = filter(v, &mut path, 0, &mut Tree)?;
    check_shape(&f, &Loc::Json(smol_str::SmolStr::default()))?;
    Ok(f)
}

/// Refuses a JSON-form filter value longer than [`MAX_JSON_LEN`] once written out: a filter that
/// arrives as a value is held to a size limit too.
pub(crate) fn text_limit(v: &Json) -> Result<(), DslError> {
    /// Counts bytes and stops at the limit.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            if self.0 > MAX_JSON_LEN {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    if serde_json::to_writer(&mut count, v).is_err() {
        return Err(DslError::limit(
            format!("the filter is longer than {MAX_JSON_LEN} bytes as JSON"),
            Loc::None,
        ));
    }
    Ok(())
}

/// What the JSON walker builds from what it reads: the tree ([`Tree`]), or checked nodes directly
/// ([`check_json`](crate::check_json)). Both get the same calls in the same order, so both see one filter.
pub(crate) trait Sink {
    /// A built node.
    type Node;
    /// A comparison read at `path` (which ends with its operator).
    fn cmp(&mut self, c: Comparison, path: &Path) -> Result<Self::Node, DslError>;
    /// All of `items`, in normal form (none: `true`; one: itself).
    fn and(&mut self, items: Vec<Self::Node>) -> Result<Self::Node, DslError>;
    /// Any of `items`, in normal form (none: `false`; one: itself).
    fn or(&mut self, items: Vec<Self::Node>) -> Result<Self::Node, DslError>;
    /// The negation of `inner`.
    fn not(&mut self, inner: Self::Node) -> Result<Self::Node, DslError>;
}

/// Builds the [`Filter`] tree.
struct Tree;

impl Sink for Tree {
    type Node = Filter;

    fn cmp(&mut self, mut c: Comparison, path: &Path) -> Result<Filter, DslError> {
        c.loc = path.loc();
        Ok(Filter::Cmp(c))
    }

    fn and(&mut self, items: Vec<Filter>) -> Result<Filter, DslError> {
        Ok(Filter::and(items))
    }

    fn or(&mut self, items: Vec<Filter>) -> Result<Filter, DslError> {
        Ok(Filter::or(items))
    }

    fn not(&mut self, inner: Filter) -> Result<Filter, DslError> {
        Ok(Filter::Not(Box::new(inner)))
    }
}

/// Where we are in the JSON document, as a JSON pointer built while descending: a segment is
/// pushed (with the RFC 6901 escapes `~0` and `~1`) before a child is read and cut off after.
/// An error returns at once, so a pointer left unbalanced by `?` is never read again.
pub(crate) struct Path(String);

impl Path {
    /// The pointer at the top of a filter.
    pub(crate) fn new() -> Self {
        Path(String::with_capacity(64))
    }

    /// The pointer so far, as a location.
    pub(crate) fn loc(&self) -> Loc {
        Loc::Json(self.0.as_str().into())
    }

    /// Appends `/key` for a key known to need no escape (an identifier or an operator name).
    fn push_plain(&mut self, k: &str) -> usize {
        let mark = self.0.len();
        self.0.reserve(k.len() + 1);
        self.0.push('/');
        self.0.push_str(k);
        mark
    }

    /// Appends `/key`; returns the length to [`cut`](Self::cut) back to.
    fn push_key(&mut self, k: &str) -> usize {
        let mark = self.0.len();
        self.0.push('/');
        if k.bytes().any(|b| b == b'~' || b == b'/') {
            for c in k.chars() {
                match c {
                    '~' => self.0.push_str("~0"),
                    '/' => self.0.push_str("~1"),
                    c => self.0.push(c),
                }
            }
        } else {
            self.0.push_str(k);
        }
        mark
    }

    /// Appends `/n`.
    fn push_index(&mut self, n: usize) -> usize {
        let mark = self.0.len();
        self.0.push('/');
        match u8::try_from(n) {
            Ok(d @ 0..=9) => self.0.push(char::from(b'0' + d)),
            _ => self.0.push_str(itoa::Buffer::new().format(n)),
        }
        mark
    }

    fn cut(&mut self, mark: usize) {
        self.0.truncate(mark);
    }
}

/// Parses the JSON form from JSON text (at most 16 KiB).
pub fn from_json_str(s: &str) -> Result<Filter, DslError> {
    if s.len() > MAX_TEXT_LEN {
        return Err(DslError::limit(
            format!(
                "the filter is {} bytes long; at most {MAX_TEXT_LEN} are allowed",
                s.len()
            ),
            Loc::None,
        ));
    }
    let v: Json = serde_json::from_str(s).map_err(|e| {
        DslError::syntax(
            format!("invalid JSON: {e}"),
            Loc::Text {
                line: u32::try_from(e.line()).unwrap_or(u32::MAX),
                column: u32::try_from(e.column()).unwrap_or(u32::MAX),
                offset: 0,
            },
        )
    })?;
    from_json(&v)
}

/// Parses either form: JSON when the first non-blank character is `{`, text otherwise.
pub fn parse_any(s: &str) -> Result<Filter, DslError> {
    if s.trim_start().starts_with('{') {
        from_json_str(s)
    } else {
        crate::text::parse(s)
    }
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

pub(crate) fn filter<S: Sink>(
    v: &Json,
    path: &mut Path,
    depth: usize,
    sink: &mut S,
) -> Result<S::Node, DslError> {
    if depth >= MAX_DEPTH {
        return Err(DslError::limit(
            format!("the filter nests deeper than {MAX_DEPTH} levels"),
            path.loc(),
        ));
    }
    let Json::Object(map) = v else {
        return Err(DslError::syntax("expected a filter object", path.loc()).found(kind_of(v)));
    };
    // One key with one operator (the usual shape) needs no list of parts.
    if map.len() == 1
        && let Some((key, val)) = map.iter().next()
    {
        if is_logical(key) {
            return logical(key, val, path, depth, sink);
        }
        if let Json::Object(ops) = val
            && ops.len() == 1
            && let Some((name, arg)) = ops.iter().next()
        {
            let ident = field_ident(key, path)?;
            let mark = path.push_plain(key);
            let node = comparison(ident, name, arg, path, sink)?;
            path.cut(mark);
            return Ok(node);
        }
    }
    let mut parts = Vec::with_capacity(map.len());
    for (key, val) in map {
        if is_logical(key) {
            parts.push(logical(key, val, path, depth, sink)?);
        } else {
            field_ops(key, val, path, sink, &mut parts)?;
        }
    }
    sink.and(parts)
}

fn is_logical(key: &str) -> bool {
    matches!(key, "_and" | "_or" | "_not")
}

/// `_and`, `_or` or `_not` and its operand.
fn logical<S: Sink>(
    key: &str,
    val: &Json,
    path: &mut Path,
    depth: usize,
    sink: &mut S,
) -> Result<S::Node, DslError> {
    let mark = path.push_plain(key);
    let node = if key == "_not" {
        let inner = filter(val, path, depth + 1, sink)?;
        sink.not(inner)?
    } else {
        let Json::Array(items) = val else {
            return Err(DslError::syntax(
                format!("expected an array of filters after `{key}`"),
                path.loc(),
            )
            .found(kind_of(val)));
        };
        let mut children = Vec::with_capacity(items.len());
        for (n, item) in items.iter().enumerate() {
            let mark = path.push_index(n);
            children.push(filter(item, path, depth + 1, sink)?);
            path.cut(mark);
        }
        if key == "_and" {
            sink.and(children)?
        } else {
            sink.or(children)?
        }
    };
    path.cut(mark);
    Ok(node)
}

/// A field name as an identifier; the error points at the key.
fn field_ident(field: &str, path: &mut Path) -> Result<Ident, DslError> {
    Ident::new(field).map_err(|e| {
        path.push_key(field);
        e.at_if_none(&path.loc())
    })
}

/// The operators of one field, each a comparison pushed to `out` (the caller AND-s them).
fn field_ops<S: Sink>(
    field: &str,
    v: &Json,
    path: &mut Path,
    sink: &mut S,
    out: &mut Vec<S::Node>,
) -> Result<(), DslError> {
    let ident = field_ident(field, path)?;
    let mark = path.push_plain(field);
    let ops = match v {
        Json::Object(ops) if !ops.is_empty() => ops,
        _ => {
            return Err(DslError::syntax(
                format!("expected an object of operators for field `{field}`"),
                path.loc(),
            )
            .found(kind_of(v))
            .with_help(format!("for example {{\"{field}\": {{\"_eq\": ...}}}}")));
        }
    };
    for (name, arg) in ops {
        out.push(comparison(ident.clone(), name, arg, path, sink)?);
    }
    path.cut(mark);
    Ok(())
}

/// One operator of a field: `path` ends with the field.
fn comparison<S: Sink>(
    ident: Ident,
    name: &str,
    arg: &Json,
    path: &mut Path,
    sink: &mut S,
) -> Result<S::Node, DslError> {
    let Some(mut op) = Op::from_json_name(name) else {
        path.push_key(name);
        return Err(
            DslError::syntax(format!("unknown operator `{}`", clip(name)), path.loc())
                .with_help("operators are _eq _neq _lt _lte _gt _gte _in _nin _null _nnull _empty _nempty _contains _icontains _starts_with _ends_with (and their _n forms) _between _nbetween _regex"),
        );
    };
    let mark = path.push_plain(name);
    let arg = match op.arity() {
        crate::ast::Arity::Zero => {
            let flag = match arg {
                Json::Bool(b) => *b,
                Json::String(s) if s == "true" => true,
                Json::String(s) if s == "false" => false,
                _ => {
                    return Err(DslError::syntax(
                        format!("expected `true` or `false` after `{name}`"),
                        path.loc(),
                    )
                    .found(kind_of(arg)));
                }
            };
            if !flag {
                // `_null: false` is `_nnull: true`, and so on.
                op = op.positive().or_else(|| op.negated()).unwrap_or(op);
            }
            Operand::None
        }
        crate::ast::Arity::One => Operand::One(value(arg, path, false)?),
        crate::ast::Arity::Two => match arg {
            Json::Array(pair) if pair.len() == 2 => {
                let mut bound = |v: &Json, n: usize| {
                    let mark = path.push_index(n);
                    let b = match v {
                        Json::Array(_) => {
                            Err(DslError::syntax(crate::text::BOUND_NOT_LIST, path.loc()))
                        }
                        v => value(v, path, true),
                    };
                    path.cut(mark);
                    b
                };
                let (Some(a), Some(b)) = (pair.first(), pair.get(1)) else {
                    return Err(DslError::syntax("expected two bounds", path.loc()));
                };
                Operand::Two(bound(a, 0)?, bound(b, 1)?)
            }
            _ => {
                return Err(DslError::syntax(
                    format!("expected an array of two bounds after `{name}`"),
                    path.loc(),
                )
                .found(kind_of(arg)));
            }
        },
    };
    let node = sink.cmp(
        Comparison {
            field: ident,
            op,
            arg,
            loc: Loc::None,
        },
        path,
    )?;
    path.cut(mark);
    Ok(node)
}

/// Whether a `$` string names a variable (and so must parse as one).
fn looks_like_var(s: &str) -> bool {
    let boundary = |rest: &str| !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    ["$user.", "$tenant.", "$CURRENT_USER.", "$CURRENT_"]
        .iter()
        .any(|p| s.starts_with(p))
        || ["$now", "$NOW", "$CURRENT_USER", "$CURRENT_ROLES"]
            .iter()
            .any(|p| s.strip_prefix(p).is_some_and(boundary))
}

fn literal(s: &str, path: &Path) -> Result<Value, DslError> {
    if s.len() > MAX_STRING_LEN {
        return Err(DslError::limit(
            format!("a string is longer than {MAX_STRING_LEN} bytes"),
            path.loc(),
        ));
    }
    if crate::ast::has_nul(s) {
        return Err(DslError::syntax("strings cannot contain NUL", path.loc()));
    }
    Ok(Value::Str(s.into()))
}

fn value(v: &Json, path: &mut Path, in_list: bool) -> Result<Value, DslError> {
    match v {
        Json::String(s) if s.starts_with("$$") => literal(s.get(1..).unwrap_or(""), path),
        Json::String(s) if looks_like_var(s) => match variable(s) {
            Ok(("", var)) => Ok(Value::Var(var)),
            Ok((rest, _)) => Err(DslError::syntax(
                format!("unexpected `{}` after the variable", clip(rest)),
                path.loc(),
            )),
            Err(msg) => Err(DslError::syntax(msg, path.loc())),
        },
        Json::String(s) => literal(s, path),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(Value::Int(i))
            } else if n.is_u64() {
                Err(DslError::syntax(
                    format!("integer `{n}` is out of range (64-bit signed)"),
                    path.loc(),
                ))
            } else {
                match n.as_f64() {
                    Some(x) if x.is_finite() => Ok(Value::Float(x)),
                    _ => Err(DslError::syntax(
                        format!("number `{n}` is out of range"),
                        path.loc(),
                    )),
                }
            }
        }
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::Array(items) if !in_list => {
            if items.len() > MAX_LIST_LEN {
                return Err(DslError::limit(
                    format!(
                        "a list has {} items; at most {MAX_LIST_LEN} are allowed",
                        items.len()
                    ),
                    path.loc(),
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (n, item) in items.iter().enumerate() {
                let mark = path.push_index(n);
                out.push(value(item, path, true)?);
                path.cut(mark);
            }
            Ok(Value::List(out))
        }
        Json::Array(_) => Err(DslError::syntax("lists cannot be nested", path.loc())),
        Json::Null => Err(
            DslError::syntax("a literal `null` cannot be compared", path.loc())
                .with_help("use `{\"_null\": true}` or `{\"_nnull\": true}`"),
        ),
        Json::Object(_) => Err(DslError::syntax("expected a value", path.loc()).found("an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Var;
    use crate::text::parse;
    use serde_json::json;

    #[test]
    fn shapes() {
        assert_eq!(from_json(&json!({})).unwrap(), Filter::Const(true));
        assert_eq!(
            from_json(&json!({"_and": []})).unwrap(),
            Filter::Const(true)
        );
        assert_eq!(
            from_json(&json!({"_or": []})).unwrap(),
            Filter::Const(false)
        );
        assert_eq!(
            from_json(&json!({"views": {"_gt": 1, "_lt": 10}})).unwrap(),
            parse("views > 1 && views < 10").unwrap()
        );
        assert_eq!(
            from_json(&json!({"a": {"_null": false}})).unwrap(),
            parse("a is not null").unwrap()
        );
        assert_eq!(
            from_json(&json!({"a": {"_nempty": "false"}})).unwrap(),
            parse("a is empty").unwrap()
        );
        assert_eq!(
            from_json(&json!({"_not": {"a": {"_between": [1, 2]}}})).unwrap(),
            parse("!(a between 1 and 2)").unwrap()
        );
    }

    #[test]
    fn directus_variables() {
        let cases = [
            ("$CURRENT_USER", Var::UserId),
            ("$CURRENT_USER.id", Var::UserId),
            ("$CURRENT_USER.email", Var::UserEmail),
            ("$CURRENT_ROLES", Var::UserRoles),
            ("$NOW", Var::Now(None)),
        ];
        for (s, var) in cases {
            let f = from_json(&json!({"a": {"_eq": s}})).unwrap();
            let Filter::Cmp(c) = f else { panic!() };
            assert_eq!(c.arg, Operand::One(Value::Var(var)), "{s}");
        }
        let f = from_json(&json!({"a": {"_gt": "$NOW(-1 year)"}})).unwrap();
        assert_eq!(f, parse("a > $now(-1 year)").unwrap());
        // Strings that only start with `$` are literals.
        let f = from_json(&json!({"price": {"_eq": "$5"}})).unwrap();
        assert_eq!(f, parse("price = \"$5\"").unwrap());
        // `$$` escapes a literal that would read as a variable, and the printer uses it.
        let f = parse(r#"a = "$user.id" && b = "$CURRENT_USERP" && c = "$$""#).unwrap();
        assert_eq!(
            f.to_json(),
            json!({"_and": [{"a": {"_eq": "$$user.id"}}, {"b": {"_eq": "$$CURRENT_USERP"}}, {"c": {"_eq": "$$$"}}]})
        );
        assert_eq!(from_json(&f.to_json()).unwrap(), f);
        assert!(from_json(&json!({"a": {"_eq": "$user.x.y"}})).is_err());
    }

    #[test]
    fn errors_carry_pointers() {
        let e = from_json(&json!({"_and": [{"a": {"_eq": 1}}, {"b": {"_foo": 1}}]})).unwrap_err();
        assert_eq!(e.loc(), &Loc::Json("/_and/1/b/_foo".into()));
        let deep = from_json(
            &json!({"_or": [{"_and": [{"a": {"_eq": 1}}, {"_not": {"b": {"_in": [1, [2]]}}}]}]}),
        )
        .unwrap_err();
        assert_eq!(deep.loc(), &Loc::Json("/_or/0/_and/1/_not/b/_in/1".into()));
        let e = from_json(&json!({"a": {"_eq": null}})).unwrap_err();
        assert!(e.to_string().contains("`/a/_eq`"), "{e}");
        assert!(from_json(&json!({"a": 1})).is_err());
        assert!(from_json(&json!({"a\"; drop": {"_eq": 1}})).is_err());
        let e = from_json(&json!({"_or": [{"a/b~c": {"_eq": 1}}]})).unwrap_err();
        assert_eq!(e.loc(), &Loc::Json("/_or/0/a~1b~0c".into()));
        assert!(from_json(&json!({"a": {"_in": [[1]]}})).is_err());
        assert!(from_json(&json!({"a": {"_eq": 18446744073709551615u64}})).is_err());
        assert!(from_json(&json!([1])).is_err());
        assert!(from_json_str("{\"a\":").is_err());
    }

    #[test]
    fn floats_survive_json_text() {
        // serde_json needs `float_roundtrip` for this one (found by the round-trip property).
        let f = parse("a = -6.876225283112544e-178").unwrap();
        assert_eq!(from_json_str(&f.to_json().to_string()).unwrap(), f);
    }

    #[test]
    fn limits() {
        let mut v = json!({"a": {"_eq": 1}});
        for _ in 0..40 {
            v = json!({"_not": v});
        }
        assert_eq!(from_json(&v).unwrap_err().kind(), crate::ErrorKind::Limit);
        let many: Vec<_> = (0..600).map(|_| json!({"a": {"_eq": 1}})).collect();
        assert_eq!(
            from_json(&json!({"_and": many})).unwrap_err().kind(),
            crate::ErrorKind::Limit
        );
        let big: Vec<_> = (0..1001).collect();
        assert_eq!(
            from_json(&json!({"a": {"_in": big}})).unwrap_err().kind(),
            crate::ErrorKind::Limit
        );
    }
}

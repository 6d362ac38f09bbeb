//! The JSON form (Directus-compatible): `{"_and": [{"owner_id": {"_eq": "$user.id"}}, ...]}`.

use crate::ast::{Comparison, Filter, Ident, Op, Operand, Value};
use crate::error::{DslError, Loc, clip};
use crate::limits::{MAX_DEPTH, MAX_LIST_LEN, MAX_STRING_LEN, MAX_TEXT_LEN};
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
    let f = filter(v, &Path::ROOT, 0)?;
    check_shape(&f, &Loc::Json(smol_str::SmolStr::default()))?;
    Ok(f)
}

/// Where we are in the JSON document: a chain of segments on the stack, turned into a JSON
/// pointer only when an error or a comparison needs one.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

impl<'a> Path<'a> {
    const ROOT: Path<'static> = Path {
        parent: None,
        seg: Seg::Root,
    };

    fn key(&'a self, k: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Key(k),
        }
    }

    fn index(&'a self, n: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Index(n),
        }
    }

    fn loc(&self) -> Loc {
        let mut buf = [0u8; 64];
        let mut len = 0;
        if self.write_plain(&mut buf, &mut len)
            && let Some(Ok(p)) = buf.get(..len).map(std::str::from_utf8)
        {
            return Loc::Json(p.into());
        }
        let mut p = String::new();
        self.write_escaped(&mut p);
        Loc::Json(p.into())
    }

    /// Writes the pointer into `buf` when no key needs escaping and it fits; `false` otherwise.
    fn write_plain(&self, buf: &mut [u8; 64], len: &mut usize) -> bool {
        if let Some(parent) = self.parent
            && !parent.write_plain(buf, len)
        {
            return false;
        }
        let mut put = |bytes: &[u8]| match buf.get_mut(*len..*len + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                *len += bytes.len();
                true
            }
            None => false,
        };
        match self.seg {
            Seg::Root => true,
            Seg::Key(k) => {
                !k.bytes().any(|b| b == b'~' || b == b'/') && put(b"/") && put(k.as_bytes())
            }
            Seg::Index(i) => put(b"/") && put(itoa::Buffer::new().format(i).as_bytes()),
        }
    }

    /// Writes the pointer with RFC 6901 escapes (`~0`, `~1`).
    fn write_escaped(&self, out: &mut String) {
        if let Some(parent) = self.parent {
            parent.write_escaped(out);
        }
        match self.seg {
            Seg::Root => {}
            Seg::Key(k) => {
                out.push('/');
                out.push_str(&k.replace('~', "~0").replace('/', "~1"));
            }
            Seg::Index(i) => {
                out.push('/');
                out.push_str(itoa::Buffer::new().format(i));
            }
        }
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

fn filter(v: &Json, path: &Path<'_>, depth: usize) -> Result<Filter, DslError> {
    if depth >= MAX_DEPTH {
        return Err(DslError::limit(
            format!("the filter nests deeper than {MAX_DEPTH} levels"),
            path.loc(),
        ));
    }
    let Json::Object(map) = v else {
        return Err(DslError::syntax("expected a filter object", path.loc()).found(kind_of(v)));
    };
    let mut parts = Vec::with_capacity(map.len());
    for (key, val) in map {
        let here = path.key(key);
        match key.as_str() {
            "_and" | "_or" => {
                let Json::Array(items) = val else {
                    return Err(DslError::syntax(
                        format!("expected an array of filters after `{key}`"),
                        here.loc(),
                    )
                    .found(kind_of(val)));
                };
                let mut children = Vec::with_capacity(items.len());
                for (n, item) in items.iter().enumerate() {
                    children.push(filter(item, &here.index(n), depth + 1)?);
                }
                parts.push(if key == "_and" {
                    Filter::and(children)
                } else {
                    Filter::or(children)
                });
            }
            "_not" => parts.push(Filter::Not(Box::new(filter(val, &here, depth + 1)?))),
            field => field_ops(field, val, &here, &mut parts)?,
        }
    }
    Ok(Filter::and(parts))
}

fn field_ops(
    field: &str,
    v: &Json,
    path: &Path<'_>,
    out: &mut Vec<Filter>,
) -> Result<(), DslError> {
    let ident = Ident::new(field).map_err(|e| e.at_if_none(&path.loc()))?;
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
        let here = path.key(name);
        let Some(mut op) = Op::from_json_name(name) else {
            return Err(
                DslError::syntax(format!("unknown operator `{}`", clip(name)), here.loc())
                    .with_help("operators are _eq _neq _lt _lte _gt _gte _in _nin _null _nnull _empty _nempty _contains _icontains _starts_with _ends_with (and their _n forms) _between _nbetween _regex"),
            );
        };
        let arg = match op.arity() {
            crate::ast::Arity::Zero => {
                let flag = match arg {
                    Json::Bool(b) => *b,
                    Json::String(s) if s == "true" => true,
                    Json::String(s) if s == "false" => false,
                    _ => {
                        return Err(DslError::syntax(
                            format!("expected `true` or `false` after `{name}`"),
                            here.loc(),
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
            crate::ast::Arity::One => Operand::One(value(arg, &here, false)?),
            crate::ast::Arity::Two => match arg {
                Json::Array(pair) if pair.len() == 2 => {
                    let (Some(a), Some(b)) = (pair.first(), pair.get(1)) else {
                        return Err(DslError::syntax("expected two bounds", here.loc()));
                    };
                    let bound = |v: &Json, n: usize| match v {
                        Json::Array(_) => Err(DslError::syntax(
                            crate::text::BOUND_NOT_LIST,
                            here.index(n).loc(),
                        )),
                        v => value(v, &here.index(n), true),
                    };
                    Operand::Two(bound(a, 0)?, bound(b, 1)?)
                }
                _ => {
                    return Err(DslError::syntax(
                        format!("expected an array of two bounds after `{name}`"),
                        here.loc(),
                    )
                    .found(kind_of(arg)));
                }
            },
        };
        out.push(Filter::Cmp(Comparison {
            field: ident.clone(),
            op,
            arg,
            loc: here.loc(),
        }));
    }
    Ok(())
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

fn literal(s: &str, path: &Path<'_>) -> Result<Value, DslError> {
    if s.len() > MAX_STRING_LEN {
        return Err(DslError::limit(
            format!("a string is longer than {MAX_STRING_LEN} bytes"),
            path.loc(),
        ));
    }
    if s.contains('\0') {
        return Err(DslError::syntax("strings cannot contain NUL", path.loc()));
    }
    Ok(Value::Str(s.into()))
}

fn value(v: &Json, path: &Path<'_>, in_list: bool) -> Result<Value, DslError> {
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
                out.push(value(item, &path.index(n), true)?);
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

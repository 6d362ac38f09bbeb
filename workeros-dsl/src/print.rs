//! Printing a tree back to either surface form.

use crate::ast::{Filter, Operand, Shift, Value, Var};
use serde_json::{Map, Value as Json, json};
use std::fmt::Write as _;

impl Filter {
    /// The text form. `parse(&f.to_text()) == Ok(f)` for every normal-form tree whose text fits
    /// the 16 KiB text limit. The text can be longer than what was parsed (spacing is normalised,
    /// control characters print as `\u{..}` escapes), so a filter read near the limit may print
    /// beyond it; the JSON form ([`to_json`](Self::to_json)) has no such bound and is the one to
    /// store.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        write_filter(&mut out, self);
        out
    }

    /// The JSON form. `from_json(&f.to_json()) == Ok(f)` for every normal-form tree.
    pub fn to_json(&self) -> Json {
        match self {
            Filter::Const(true) => json!({ "_and": [] }),
            Filter::Const(false) => json!({ "_or": [] }),
            Filter::And(items) => {
                json!({ "_and": items.iter().map(Filter::to_json).collect::<Vec<_>>() })
            }
            Filter::Or(items) => {
                json!({ "_or": items.iter().map(Filter::to_json).collect::<Vec<_>>() })
            }
            Filter::Not(f) => json!({ "_not": f.to_json() }),
            Filter::Cmp(c) => {
                let arg = match &c.arg {
                    Operand::None => Json::Bool(true),
                    Operand::One(v) => value_json(v),
                    Operand::Two(a, b) => Json::Array(vec![value_json(a), value_json(b)]),
                };
                let mut ops = Map::new();
                ops.insert(c.op.json_name().into(), arg);
                let mut m = Map::new();
                m.insert(c.field.as_str().into(), Json::Object(ops));
                Json::Object(m)
            }
        }
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

fn write_filter(out: &mut String, f: &Filter) {
    match f {
        Filter::Const(b) => out.push_str(if *b { "true" } else { "false" }),
        Filter::And(items) | Filter::Or(items) => {
            let sep = if matches!(f, Filter::And(_)) {
                " && "
            } else {
                " || "
            };
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(sep);
                }
                if matches!(item, Filter::And(_) | Filter::Or(_)) {
                    out.push('(');
                    write_filter(out, item);
                    out.push(')');
                } else {
                    write_filter(out, item);
                }
            }
        }
        Filter::Not(inner) => {
            out.push('!');
            if matches!(**inner, Filter::Const(_) | Filter::Not(_)) {
                write_filter(out, inner);
            } else {
                out.push('(');
                write_filter(out, inner);
                out.push(')');
            }
        }
        Filter::Cmp(c) => {
            out.push_str(c.field.as_str());
            out.push(' ');
            out.push_str(c.op.text_name());
            match &c.arg {
                Operand::None => {}
                Operand::One(v) => {
                    out.push(' ');
                    write_value(out, v);
                }
                Operand::Two(a, b) => {
                    out.push(' ');
                    write_value(out, a);
                    out.push_str(" and ");
                    write_value(out, b);
                }
            }
        }
    }
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Str(s) => write_string(out, s),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(x) => {
            // `{:?}` always keeps a `.` or an exponent, so the literal parses back as a float.
            let _ = write!(out, "{x:?}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::List(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Var(var) => out.push_str(&var_text(var)),
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The canonical spelling of a variable (`$user.id`, `$now(-1 day)`).
pub(crate) fn var_text(v: &Var) -> String {
    match v {
        Var::UserId => "$user.id".into(),
        Var::UserEmail => "$user.email".into(),
        Var::UserRoles => "$user.roles".into(),
        Var::UserAttr(a) => format!("$user.{a}"),
        Var::TenantId => "$tenant.id".into(),
        Var::Now(None) => "$now".into(),
        Var::Now(Some(Shift { amount, unit })) => {
            let sign = if *amount < 0 { '-' } else { '+' };
            let plural = if amount.unsigned_abs() == 1 { "" } else { "s" };
            format!(
                "$now({sign}{} {}{plural})",
                amount.unsigned_abs(),
                unit.singular()
            )
        }
    }
}

fn value_json(v: &Value) -> Json {
    match v {
        // A literal starting with `$` would read back as a variable: `$$` escapes it.
        Value::Str(s) if s.starts_with('$') => Json::String(format!("${s}")),
        Value::Str(s) => Json::String(s.to_string()),
        Value::Int(i) => Json::from(*i),
        Value::Float(x) => serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number),
        Value::Bool(b) => Json::Bool(*b),
        Value::List(items) => Json::Array(items.iter().map(value_json).collect()),
        Value::Var(var) => Json::String(var_text(var)),
    }
}

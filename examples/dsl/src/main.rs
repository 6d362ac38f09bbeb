//! `example-dsl`: format filters, compile them to SQL, and match rows, from the shell. It is also
//! the example of calling the workeros DSL from custom code: each command is a few lines over
//! `workeros_dsl`.
//!
//! ```text
//! example-dsl fmt [--json] <filter>
//! example-dsl sql --dialect postgres|sqlite [--schema <json>] [--subject <json>] [--now <rfc3339>] <filter>
//! example-dsl match [--schema <json>] [--subject <json>] [--now <rfc3339>] (--row <json object> | --rows <json array>) <filter>
//! ```
//!
//! `<filter>` is the text form, or the JSON form when it starts with `{`. `--schema` is
//! `{"fields": {"<name>": "<field type>", ...}}` with the field type names of the store
//! (`text`, `longtext`, `integer`, `number`, `boolean`, `json`, `timestamp`, `uuid`, `relation`,
//! `relation_many`). Without `--schema`, each field's type is inferred: in `match` from the rows'
//! values, otherwise from the literals it is compared with (text when nothing tells). `--subject`
//! is `{"user": {"id", "email", "roles", "attrs"}, "tenant"}`, every part optional, no `user`
//! meaning anonymous. `--now` defaults to the current time.
//!
//! Exit status: 0 on success, 2 on any usage, parse, check or compile error (message on stderr).

use serde_json::{Map, Value as Json, json};
use std::process::ExitCode;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use workeros_core::{FieldType, Subject};
use workeros_dsl::{Dialect, Filter, Operand, Schema, Value, ValueKind, parse_any};

const USAGE: &str = "usage:
  example-dsl fmt [--json] <filter>
  example-dsl sql --dialect postgres|sqlite [--schema <json>] [--subject <json>] [--now <rfc3339>] <filter>
  example-dsl match [--schema <json>] [--subject <json>] [--now <rfc3339>] (--row <json object> | --rows <json array>) <filter>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Parsed command-line options.
#[derive(Default)]
struct Opts {
    json: bool,
    dialect: Option<String>,
    schema: Option<String>,
    subject: Option<String>,
    now: Option<String>,
    row: Option<String>,
    rows: Option<String>,
    filter: Option<String>,
}

fn parse_opts(args: &[String], allowed: &[&str]) -> Result<Opts, String> {
    let mut o = Opts::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a.starts_with("--") && a.len() > 2 {
            if !allowed.contains(&a.as_str()) {
                return Err(format!("unknown option `{a}` for this command\n{USAGE}"));
            }
            if a == "--json" {
                o.json = true;
                continue;
            }
            let v = it
                .next()
                .cloned()
                .ok_or_else(|| format!("option `{a}` needs a value\n{USAGE}"))?;
            let slot = match a.as_str() {
                "--dialect" => &mut o.dialect,
                "--schema" => &mut o.schema,
                "--subject" => &mut o.subject,
                "--now" => &mut o.now,
                "--row" => &mut o.row,
                _ => &mut o.rows,
            };
            if slot.replace(v).is_some() {
                return Err(format!("option `{a}` given twice"));
            }
        } else if o.filter.replace(a.clone()).is_some() {
            return Err(format!(
                "expected one filter, found another: `{a}`\n{USAGE}"
            ));
        }
    }
    Ok(o)
}

fn run(args: &[String]) -> Result<String, String> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(USAGE.into());
    };
    match cmd.as_str() {
        "fmt" => {
            let o = parse_opts(rest, &["--json"])?;
            let f = filter(&o)?;
            Ok(if o.json {
                f.to_json().to_string()
            } else {
                f.to_text()
            })
        }
        "sql" => {
            let o = parse_opts(rest, &["--dialect", "--schema", "--subject", "--now"])?;
            let dialect = match o.dialect.as_deref() {
                Some("postgres") => Dialect::Postgres,
                Some("sqlite") => Dialect::Sqlite,
                Some(d) => return Err(format!("unknown dialect `{d}`: use postgres or sqlite")),
                None => return Err(format!("`sql` needs --dialect postgres|sqlite\n{USAGE}")),
            };
            let f = filter(&o)?;
            let schema = schema(&o, &f, &[])?;
            let bound = f
                .check(&schema)
                .map_err(|e| e.to_string())?
                .bind(&subject(&o)?, now(&o)?);
            let sql = bound.compile(dialect).map_err(|e| e.to_string())?.to_sql();
            Ok(json!({"sql": sql.sql(), "values": sql.values_json()}).to_string())
        }
        "match" => {
            let o = parse_opts(rest, &["--schema", "--subject", "--now", "--row", "--rows"])?;
            let (rows, many) = match (&o.row, &o.rows) {
                (Some(r), None) => (vec![object(r, "--row")?], false),
                (None, Some(rs)) => {
                    let v: Json =
                        serde_json::from_str(rs).map_err(|e| format!("--rows is not JSON: {e}"))?;
                    let Json::Array(items) = v else {
                        return Err("--rows must be a JSON array of objects".into());
                    };
                    let rows = items
                        .into_iter()
                        .map(|i| match i {
                            Json::Object(m) => Ok(m),
                            _ => Err("--rows must be a JSON array of objects".to_string()),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    (rows, true)
                }
                _ => {
                    return Err(format!(
                        "`match` needs exactly one of --row and --rows\n{USAGE}"
                    ));
                }
            };
            let f = filter(&o)?;
            let schema = schema(&o, &f, &rows)?;
            let bound = f
                .check(&schema)
                .map_err(|e| e.to_string())?
                .bind(&subject(&o)?, now(&o)?);
            let results: Vec<bool> = rows.iter().map(|r| bound.matches(r)).collect();
            Ok(if many {
                json!(results).to_string()
            } else {
                results.first().copied().unwrap_or(false).to_string()
            })
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    }
}

fn filter(o: &Opts) -> Result<Filter, String> {
    let src = o
        .filter
        .as_deref()
        .ok_or_else(|| format!("missing <filter>\n{USAGE}"))?;
    parse_any(src).map_err(|e| e.to_string())
}

fn object(s: &str, what: &str) -> Result<Map<String, Json>, String> {
    match serde_json::from_str(s) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(_) => Err(format!("{what} must be a JSON object")),
        Err(e) => Err(format!("{what} is not JSON: {e}")),
    }
}

fn subject(o: &Opts) -> Result<Subject, String> {
    match &o.subject {
        None => Ok(Subject::anonymous()),
        Some(s) => serde_json::from_str(s).map_err(|e| format!("--subject: {e}")),
    }
}

fn now(o: &Opts) -> Result<OffsetDateTime, String> {
    match &o.now {
        None => Ok(OffsetDateTime::now_utc()),
        Some(s) => OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| format!("--now `{s}` is not an RFC 3339 timestamp: {e}")),
    }
}

/// The schema from `--schema`, or inferred from the rows and the filter's literals.
fn schema(o: &Opts, f: &Filter, rows: &[Map<String, Json>]) -> Result<Schema, String> {
    if let Some(s) = &o.schema {
        let v: Json = serde_json::from_str(s).map_err(|e| format!("--schema is not JSON: {e}"))?;
        let fields = v
            .get("fields")
            .and_then(Json::as_object)
            .ok_or("--schema must be {\"fields\": {\"<name>\": \"<field type>\", ...}}")?;
        let mut pairs = Vec::with_capacity(fields.len());
        for (name, t) in fields {
            let t = t
                .as_str()
                .ok_or_else(|| format!("--schema: the type of `{name}` must be a string"))?
                .parse::<FieldType>()
                .map_err(|e| format!("--schema: {e}"))?;
            pairs.push((name.as_str(), ValueKind::from(t)));
        }
        return Schema::of(pairs).map_err(|e| format!("--schema: {e}"));
    }
    let mut fields: Vec<(String, ValueKind)> = Vec::new();
    infer(f, rows, &mut fields);
    Schema::of(fields.iter().map(|(n, k)| (n.as_str(), *k))).map_err(|e| e.to_string())
}

fn infer(f: &Filter, rows: &[Map<String, Json>], out: &mut Vec<(String, ValueKind)>) {
    match f {
        Filter::Const(_) => {}
        Filter::And(items) | Filter::Or(items) => items.iter().for_each(|i| infer(i, rows, out)),
        Filter::Not(inner) => infer(inner, rows, out),
        Filter::Cmp(c) => {
            let name = c.field.as_str();
            if out.iter().any(|(n, _)| n == name) {
                return;
            }
            let from_rows = rows.iter().find_map(|r| match r.get(name)? {
                Json::Null => None,
                Json::Bool(_) => Some(ValueKind::Boolean),
                Json::Number(n) if n.is_i64() => Some(ValueKind::Integer),
                Json::Number(_) => Some(ValueKind::Number),
                Json::String(_) => Some(ValueKind::Text),
                Json::Array(_) | Json::Object(_) => Some(ValueKind::Json),
            });
            let literal = |v: &Value| match v {
                Value::Int(_) => Some(ValueKind::Integer),
                Value::Float(_) => Some(ValueKind::Number),
                Value::Bool(_) => Some(ValueKind::Boolean),
                Value::List(items) => items.iter().find_map(|i| match i {
                    Value::Int(_) => Some(ValueKind::Integer),
                    Value::Float(_) => Some(ValueKind::Number),
                    Value::Bool(_) => Some(ValueKind::Boolean),
                    _ => None,
                }),
                Value::Var(workeros_dsl::Var::Now(_)) => Some(ValueKind::Timestamp),
                _ => None,
            };
            let from_literal = match &c.arg {
                Operand::One(v) | Operand::Two(v, _) => literal(v),
                Operand::None => None,
            };
            out.push((
                name.to_owned(),
                from_rows.or(from_literal).unwrap_or(ValueKind::Text),
            ));
        }
    }
}

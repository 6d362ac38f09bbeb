//! The templates of flow options: `{{ path }}` looked up in the data chain (`$trigger`, `$last`,
//! operation keys), rendered within a size budget.

use super::model::MAX_VALUE_BYTES;
use serde_json::{Map, Value as Json};

/// The value at `path` (`$trigger.item.title`, `$last`, `key.field`, `list.0`) in `chain`.
pub(super) fn lookup<'a>(chain: &'a Map<String, Json>, path: &str) -> Option<&'a Json> {
    let mut parts = path.trim().split('.');
    let mut v = chain.get(parts.next()?)?;
    for p in parts {
        v = match v {
            Json::Object(m) => m.get(p)?,
            Json::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// The approximate size of `v` as JSON text, counted up to `limit` (then `limit + 1`).
pub(crate) fn json_size(v: &Json, limit: usize) -> usize {
    fn walk(v: &Json, acc: &mut usize, limit: usize) {
        if *acc > limit {
            return;
        }
        match v {
            Json::Null | Json::Bool(_) => *acc += 5,
            Json::Number(_) => *acc += 20,
            // Quotes, backslashes and control characters are escaped (up to 6 bytes).
            Json::String(s) => {
                *acc += s.len()
                    + 2
                    + 5 * s
                        .bytes()
                        .filter(|b| *b < 0x20 || *b == b'"' || *b == b'\\')
                        .count();
            }
            Json::Array(a) => {
                *acc += 2;
                for x in a {
                    walk(x, acc, limit);
                    *acc += 1;
                }
            }
            Json::Object(m) => {
                *acc += 2;
                for (k, x) in m {
                    *acc += k.len() + 4;
                    walk(x, acc, limit);
                }
            }
        }
    }
    let mut acc = 0;
    walk(v, &mut acc, limit);
    acc.min(limit.saturating_add(1))
}

/// Renders a template: `"{{ path }}"` alone becomes the value (any type); `{{ path }}` inside
/// text is interpolated (strings as they are, other values as JSON); objects and arrays
/// render recursively. The result may not exceed [`MAX_VALUE_BYTES`] (a template that repeats a
/// large value is refused, not rendered).
pub fn render(template: &Json, chain: &Map<String, Json>) -> Result<Json, String> {
    let mut budget = MAX_VALUE_BYTES;
    render_within(template, chain, &mut budget)
}

fn charge(budget: &mut usize, n: usize) -> Result<(), String> {
    *budget = budget
        .checked_sub(n)
        .ok_or_else(|| format!("the rendered options exceed {MAX_VALUE_BYTES} bytes"))?;
    Ok(())
}

fn render_within(
    template: &Json,
    chain: &Map<String, Json>,
    budget: &mut usize,
) -> Result<Json, String> {
    Ok(match template {
        Json::String(s) => {
            let t = s.trim();
            if let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"))
                && !inner.contains("{{")
            {
                let v = lookup(chain, inner).unwrap_or(&Json::Null);
                charge(budget, json_size(v, *budget))?;
                return Ok(v.clone());
            }
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some((before, after)) = rest.split_once("{{") {
                let Some((path, tail)) = after.split_once("}}") else {
                    break;
                };
                charge(budget, before.len())?;
                out.push_str(before);
                match lookup(chain, path) {
                    Some(Json::String(v)) => {
                        charge(budget, v.len())?;
                        out.push_str(v);
                    }
                    Some(Json::Null) | None => {}
                    Some(v) => {
                        charge(budget, json_size(v, *budget))?;
                        out.push_str(&v.to_string());
                    }
                }
                rest = tail;
            }
            charge(budget, rest.len())?;
            out.push_str(rest);
            Json::String(out)
        }
        Json::Array(a) => Json::Array(
            a.iter()
                .map(|v| render_within(v, chain, budget))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), render_within(v, chain, budget)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

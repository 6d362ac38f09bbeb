//! What each operation type of a flow does with its rendered options: `condition`, `transform`,
//! `log`, `request`, `webhook`, `email` and `item`.

use super::engine::{Flows, Loaded};
use super::model::{ItemScope, MAX_RESPONSE_BYTES, Operation, OperationKind};
use super::template::lookup;
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;
use workeros_core::{Email, Subject};
use workeros_dsl::{FieldSpec, Schema, ValueKind};
use workeros_store::values::now;
use workeros_store::{NewItems, Written};

/// The rejection of a condition that did not match (not a failure of the run by itself).
pub(super) const NO_MATCH: &str = "the condition does not match";

/// Why a `condition` may not use `matches`: a flow's filters are the tenant's to write and run
/// on data it does not choose; regular expressions are kept for permission `validation`.
pub(super) const NO_REGEX: &str = "a `condition` filter cannot use `_regex` (`matches`): use \
     `_contains`, `_icontains`, `_starts_with` or `_ends_with`";

/// A DSL filter (text or JSON form) matched against an object whose field types are read off
/// its values.
fn matches_object(filter: &Json, object: &Map<String, Json>) -> Result<bool, String> {
    let parsed = match filter {
        Json::String(s) => workeros_dsl::parse_any(s),
        other => workeros_dsl::from_json(other),
    }
    .map_err(|e| format!("the filter does not parse: {e}"))?;
    if parsed.uses_op(workeros_dsl::Op::Regex) {
        return Err(NO_REGEX.to_owned());
    }
    let mut schema = Schema::new();
    for (k, v) in object {
        let kind = match v {
            Json::String(_) => ValueKind::Text,
            Json::Number(n) if n.is_i64() => ValueKind::Integer,
            Json::Number(_) => ValueKind::Number,
            Json::Bool(_) => ValueKind::Boolean,
            _ => ValueKind::Json,
        };
        if let Ok(spec) = FieldSpec::new(k, kind) {
            let _ = schema.add(spec);
        }
    }
    let checked = parsed
        .check(&schema)
        .map_err(|e| format!("the filter does not fit the data: {e}"))?;
    let subject = Subject::anonymous();
    Ok(checked.bind(&subject, now()).matches(object))
}

impl Flows {
    /// One operation: its output, or (output so far, error).
    pub(super) async fn operate(
        &self,
        l: &Loaded,
        op: &Operation,
        input: &Json,
        chain: &Map<String, Json>,
        caller: Option<&Subject>,
    ) -> Result<Json, (Json, String)> {
        let opt = |k: &str| input.get(k).cloned().unwrap_or(Json::Null);
        let text = |k: &str| match input.get(k) {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Null) | None => String::new(),
            Some(v) => v.to_string(),
        };
        let fail = |e: String| (Json::Null, e);
        match op.kind {
            OperationKind::Condition => {
                let on = op
                    .options
                    .get("on")
                    .and_then(Json::as_str)
                    .unwrap_or("$last");
                let target = lookup(chain, on).cloned().unwrap_or(Json::Null);
                let Some(object) = target.as_object() else {
                    return Err((target.clone(), format!("`{on}` is not an object")));
                };
                // The filter is matched as written, not rendered.
                let filter = op.options.get("filter").cloned().unwrap_or(Json::Null);
                match matches_object(&filter, object) {
                    Ok(true) => Ok(target.clone()),
                    Ok(false) => Err((target.clone(), NO_MATCH.into())),
                    Err(e) => Err((target.clone(), e)),
                }
            }
            OperationKind::Transform => Ok(opt("json")),
            OperationKind::Log => {
                let message = text("message");
                tracing::info!(flow = %l.flow.id, operation = op.key, message, "flow log");
                Ok(json!({"message": message}))
            }
            OperationKind::Request => {
                let method = text("method");
                let method = if method.is_empty() {
                    "GET".to_owned()
                } else {
                    method.to_ascii_uppercase()
                };
                let method = reqwest::Method::from_bytes(method.as_bytes())
                    .map_err(|_| fail(format!("unknown method `{method}`")))?;
                self.spend_request(&l.tenant).map_err(fail)?;
                let mut req = self
                    .inner
                    .guard
                    .for_tenant(&l.tenant)
                    .request(method, &text("url"))
                    .map_err(|e| fail(e.to_string()))?;
                if let Some(h) = input.get("headers").and_then(Json::as_object) {
                    let h: std::collections::BTreeMap<String, String> = h
                        .iter()
                        .map(|(k, v)| {
                            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                            (k.clone(), v)
                        })
                        .collect();
                    crate::guard::check_headers(&h).map_err(|e| fail(e.to_string()))?;
                    for (k, v) in h {
                        req = req.header(k, v);
                    }
                }
                match input.get("body") {
                    None | Some(Json::Null) => {}
                    Some(Json::String(s)) => req = req.body(s.clone()),
                    Some(b) => {
                        req = req
                            .header("content-type", "application/json")
                            .body(b.to_string());
                    }
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| fail(crate::guard::describe(&e)))?;
                let status = resp.status().as_u16();
                let mut bytes = Vec::new();
                let mut resp = resp;
                while let Ok(Some(c)) = resp.chunk().await {
                    bytes.extend_from_slice(&c);
                    if bytes.len() > MAX_RESPONSE_BYTES {
                        bytes.truncate(MAX_RESPONSE_BYTES);
                        break;
                    }
                }
                let data = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&bytes).into_owned()));
                let out = json!({"status": status, "data": data});
                if (200..300).contains(&status) {
                    Ok(out)
                } else {
                    Err((out, format!("the answer was {status}")))
                }
            }
            OperationKind::Webhook => {
                let body = match input.get("body") {
                    None | Some(Json::Null) => chain.get("$last").cloned().unwrap_or(Json::Null),
                    Some(b) => b.clone(),
                }
                .to_string();
                let id = Uuid::now_v7().to_string();
                let ts = now().unix_timestamp();
                self.spend_request(&l.tenant).map_err(fail)?;
                let req = self
                    .inner
                    .guard
                    .for_tenant(&l.tenant)
                    .request(reqwest::Method::POST, &text("url"))
                    .map_err(|e| fail(e.to_string()))?;
                let resp = req
                    .header("content-type", "application/json")
                    .header("webhook-id", id.as_str())
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", l.secret.sign(&id, ts, body.as_bytes()))
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| fail(crate::guard::describe(&e)))?;
                let status = resp.status().as_u16();
                let out = json!({"status": status, "id": id});
                if (200..300).contains(&status) {
                    Ok(out)
                } else {
                    Err((out, format!("the answer was {status}")))
                }
            }
            OperationKind::Email => {
                let Some(sender) = &self.inner.email else {
                    return Err(fail("no email sender is configured".into()));
                };
                let email = Email {
                    to: text("to"),
                    subject: text("subject"),
                    text: text("body"),
                    html: None,
                };
                if !email.to.contains('@') {
                    return Err(fail(format!("`{}` is not an email address", email.to)));
                }
                sender
                    .send(&email)
                    .await
                    .map_err(|e| fail(format!("sending failed: {e}")))?;
                Ok(json!({"to": email.to}))
            }
            OperationKind::Item => {
                // Saved flows state their scope; a rendered empty one is the admin's.
                let scope = match text("permissions").as_str() {
                    "" => Some(ItemScope::Admin),
                    _ => ItemScope::of(input.get("permissions")),
                };
                let subject = match scope {
                    Some(ItemScope::Admin) => crate::admin::system_subject("flows", &l.tenant),
                    Some(ItemScope::Public) => Subject::anonymous().with_tenant(&l.tenant),
                    Some(ItemScope::Caller) => match caller {
                        Some(s) => s.clone(),
                        None => {
                            return Err(fail(
                                "`caller` permissions need a manual run: this run has no caller"
                                    .into(),
                            ));
                        }
                    },
                    None => {
                        return Err(fail(format!(
                            "unknown permissions `{}`: use `admin`, `caller` or `public`",
                            text("permissions")
                        )));
                    }
                };
                let collection = text("collection");
                let payload = opt("payload");
                let store = &self.inner.store;
                let written = match text("action").as_str() {
                    "" | "create" => {
                        let items =
                            NewItems::from_json(payload).map_err(|e| fail(e.to_string()))?;
                        store
                            .create_items(&subject, &collection, items)
                            .await
                            .map(|w| match w {
                                Written::One(m) => Json::Object(m),
                                Written::Many(v) => {
                                    Json::Array(v.into_iter().map(Json::Object).collect())
                                }
                            })
                    }
                    "update" => {
                        let Json::Object(patch) = payload else {
                            return Err(fail("an update's `payload` is an object".into()));
                        };
                        store
                            .update_item(&subject, &collection, &text("key"), patch)
                            .await
                            .map(Json::Object)
                    }
                    other => {
                        return Err(fail(format!(
                            "unknown action `{other}`: use `create` or `update`"
                        )));
                    }
                };
                written.map_err(|e| fail(e.to_string()))
            }
        }
    }
}

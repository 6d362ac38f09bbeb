//! The list query language, without HTTP: Directus's parameters from raw pairs or a whole query
//! string, so a host on any web framework reads a request the way the axum routes do.

use crate::{ListQuery, SortKey, StoreError};

impl ListQuery {
    /// Reads a list query from its raw, decoded pairs: `filter` (JSON or text form, or the
    /// Directus bracket syntax `filter[views][_gt]=10`), `sort`, `limit`, `offset`, `fields`,
    /// `meta=count`. Parameters it does not know are left to the caller.
    ///
    /// ```
    /// # use workeros_store::ListQuery;
    /// let pairs = [("filter[views][_gt]".to_owned(), "10".to_owned())];
    /// let q = ListQuery::from_pairs(&pairs)?;
    /// assert_eq!(q.filter, Some(serde_json::json!({"views": {"_gt": "10"}})));
    /// # Ok::<(), workeros_store::StoreError>(())
    /// ```
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<ListQuery, StoreError> {
        let mut q = ListQuery::default();
        let mut brackets = serde_json::Map::new();
        let number = |k: &str, v: &str| {
            v.parse::<u64>().map_err(|_| {
                StoreError::BadRequest(format!("`{k}` must be a non-negative integer, not `{v}`"))
            })
        };
        for (k, v) in pairs {
            match k.as_str() {
                "filter" => {
                    let t = v.trim_start();
                    q.filter = Some(if t.starts_with('{') {
                        serde_json::from_str(t).map_err(|e| {
                            StoreError::BadRequest(format!("`filter` is not valid JSON: {e}"))
                        })?
                    } else {
                        serde_json::Value::String(v.clone())
                    });
                }
                "sort" => q.sort = SortKey::parse_list(v),
                "limit" => q.limit = Some(number(k, v)?),
                "offset" => q.offset = Some(number(k, v)?),
                "fields" => {
                    q.fields = Some(
                        v.split(',')
                            .map(|f| f.trim().to_owned())
                            .filter(|f| !f.is_empty())
                            .collect(),
                    );
                }
                "meta" => q.count = v.split(',').any(|m| m == "count" || m == "*"),
                _ if k.starts_with("filter[") => insert_bracket(&mut brackets, k, v)?,
                _ => {}
            }
        }
        if !brackets.is_empty() {
            if q.filter.is_some() {
                return Err(StoreError::BadRequest(
                    "give `filter` once: as a value or in the bracket syntax, not both".into(),
                ));
            }
            q.filter = Some(arrays_of(serde_json::Value::Object(brackets)));
        }
        Ok(q)
    }

    /// Reads a list query from a raw query string (`filter%5Bviews%5D%5B_gt%5D=10&limit=5`, the
    /// part after `?`), percent-decoding it first: what a host on actix-web, hyper or any other
    /// framework passes through.
    ///
    /// ```
    /// # use workeros_store::ListQuery;
    /// let q = ListQuery::parse("sort=-title&limit=5&filter%5Bstatus%5D%5B_eq%5D=draft")?;
    /// assert_eq!(q.limit, Some(5));
    /// assert_eq!(q.filter, Some(serde_json::json!({"status": {"_eq": "draft"}})));
    /// # Ok::<(), workeros_store::StoreError>(())
    /// ```
    pub fn parse(query_string: &str) -> Result<ListQuery, StoreError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query_string.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self::from_pairs(&pairs)
    }
}

/// Puts `filter[a][b]…=v` into `root`; list operators split their value on commas.
fn insert_bracket(
    root: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    let bad = || StoreError::BadRequest(format!("malformed filter parameter `{key}`"));
    let rest = key.strip_prefix("filter").ok_or_else(bad)?;
    let mut path = Vec::new();
    let mut s = rest;
    while !s.is_empty() {
        let inner = s.strip_prefix('[').ok_or_else(bad)?;
        let end = inner.find(']').ok_or_else(bad)?;
        path.push(inner.get(..end).ok_or_else(bad)?.to_owned());
        s = inner.get(end + 1..).ok_or_else(bad)?;
    }
    if path.is_empty() || path.len() > 64 {
        return Err(bad());
    }
    let last = path.last().cloned().unwrap_or_default();
    let leaf = if matches!(last.as_str(), "_in" | "_nin" | "_between" | "_nbetween") {
        serde_json::Value::Array(
            value
                .split(',')
                .map(|p| serde_json::Value::String(p.to_owned()))
                .collect(),
        )
    } else {
        serde_json::Value::String(value.to_owned())
    };
    let mut node = root;
    let (init, _) = path.split_at(path.len() - 1);
    for p in init {
        let entry = node
            .entry(p.clone())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        node = entry.as_object_mut().ok_or_else(bad)?;
    }
    node.insert(last, leaf);
    Ok(())
}

/// Objects under `_and`/`_or` keyed by indexes become arrays, in index order.
fn arrays_of(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let v = arrays_of(v);
                let v = match (k.as_str(), v) {
                    ("_and" | "_or", serde_json::Value::Object(items))
                        if items.keys().all(|i| i.parse::<usize>().is_ok()) =>
                    {
                        let mut items: Vec<(usize, serde_json::Value)> = items
                            .into_iter()
                            .map(|(i, v)| (i.parse().unwrap_or(0), v))
                            .collect();
                        items.sort_by_key(|(i, _)| *i);
                        serde_json::Value::Array(items.into_iter().map(|(_, v)| v).collect())
                    }
                    (_, v) => v,
                };
                out.insert(k, v);
            }
            serde_json::Value::Object(out)
        }
        other => other,
    }
}

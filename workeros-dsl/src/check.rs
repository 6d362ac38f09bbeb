//! Checking a tree against a schema: every field exists and is readable, every operator fits the
//! field's type, every literal coerces to it. The result is the checked IR that binding takes.

use crate::ast::{Arity, Comparison, Filter, Op, Operand, Value, Var};
use crate::error::{DslError, ErrorKind, Loc, clip};
use crate::limits::{
    MAX_DEPTH, MAX_LIST_LEN, MAX_NODES, MAX_REGEX_SIZE, MAX_REGEXES, MAX_STRING_LEN, MAX_VALUES,
};
use crate::schema::{FieldSpec, Schema, ValueKind};
use crate::text::MAX_SHIFT;
use crate::timefmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// A typed literal, coerced to its field's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// Text (short ones are stored inline).
    Text(smol_str::SmolStr),
    /// A 64-bit integer.
    Int(i64),
    /// A finite double.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An instant, in microseconds since the Unix epoch (UTC).
    Ts(i64),
    /// A UUID.
    Uuid(Uuid),
}

/// A checked value: a coerced literal or a variable to substitute when binding.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CVal {
    Lit(Scalar),
    Var(Var),
}

#[derive(Debug, Clone)]
pub(crate) enum CArg {
    None,
    One(CVal),
    Two(CVal, CVal),
    List(Vec<CVal>),
    ListVar(Var),
    Regex(Arc<regex_lite::Regex>),
}

#[derive(Debug, Clone)]
pub(crate) struct CCmp {
    pub(crate) field: Arc<FieldSpec>,
    pub(crate) op: Op,
    pub(crate) arg: CArg,
}

#[derive(Debug, Clone)]
pub(crate) enum CNode {
    Const(bool),
    And(Vec<CNode>),
    Or(Vec<CNode>),
    Not(Box<CNode>),
    Cmp(CCmp),
}

/// A filter checked against a schema: ready to bind to a subject, many times.
#[derive(Debug, Clone)]
pub struct CheckedFilter {
    pub(crate) root: CNode,
    /// The subject variables it reads, in a fixed order (`$now` is not among them).
    pub(crate) vars: Vec<Var>,
    pub(crate) has_regex: bool,
    pub(crate) id: u64,
    /// The schema it was checked against (for indexed rows).
    pub(crate) schema: u64,
    /// How many `$now` operands it has (the compile cache checks each became a value).
    pub(crate) now_uses: usize,
    /// Its nodes (comparisons, `and`, `or`, `not`, constants), at most [`MAX_NODES`].
    pub(crate) nodes: usize,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl CheckedFilter {
    /// The subject variables the filter reads (not `$now`).
    pub fn variables(&self) -> &[Var] {
        &self.vars
    }

    /// How many nodes it has (comparisons, `and`, `or`, `not`, constants): what matching one
    /// row costs, at most, in comparisons.
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// Whether it uses `matches` (`_regex`), which only the matcher can run.
    pub fn uses_regex(&self) -> bool {
        self.has_regex
    }

    /// A process-unique id of this checked filter (the compile cache's key).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// Whether `op` applies to a field of `kind`.
pub fn applies(op: Op, kind: ValueKind) -> bool {
    use ValueKind as K;
    match op {
        Op::Eq | Op::Neq | Op::In | Op::Nin => kind != K::Json,
        Op::Lt | Op::Lte | Op::Gt | Op::Gte | Op::Between | Op::NBetween => {
            matches!(kind, K::Text | K::Integer | K::Number | K::Timestamp)
        }
        Op::Null | Op::NNull | Op::Empty | Op::NEmpty => true,
        Op::Regex => kind == K::Text,
        _ if op.is_substring() => kind == K::Text,
        _ => false,
    }
}

fn kind_name(k: ValueKind) -> &'static str {
    match k {
        ValueKind::Text => "text",
        ValueKind::Integer => "integer",
        ValueKind::Number => "number",
        ValueKind::Boolean => "boolean",
        ValueKind::Json => "json",
        ValueKind::Timestamp => "timestamp",
        ValueKind::Uuid => "uuid",
    }
}

fn ops_for(kind: ValueKind) -> String {
    Op::ALL
        .iter()
        .filter(|op| applies(**op, kind))
        .map(|op| op.text_name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Filter {
    /// Checks the filter against `schema`.
    ///
    /// ```
    /// use workeros_dsl::{Schema, ValueKind, parse};
    /// let schema = Schema::of([("views", ValueKind::Integer), ("title", ValueKind::Text)])?;
    /// assert!(parse(r#"views > "5""#)?.check(&schema).is_ok()); // "5" coerces to 5
    /// assert!(parse(r#"views > "abc""#)?.check(&schema).is_err());
    /// assert!(parse("title > 1 && secret = 1")?.check(&schema).is_err());
    /// # Ok::<(), workeros_dsl::DslError>(())
    /// ```
    pub fn check(&self, schema: &Schema) -> Result<CheckedFilter, DslError> {
        let mut cx = Cx::new(schema, Some(self));
        let root = cx.node(self, 1)?;
        Ok(cx.finish(root))
    }
}

/// Parses the JSON form and checks it against `schema` in one walk: the same result as
/// `from_json(v)?.check(schema)` without building the intermediate [`Filter`] (what a server does
/// with every stored permission and every `?filter=`). When the filter has several errors, the
/// one reported is the first in document order, whether a syntax or a check error.
///
/// ```
/// use workeros_dsl::{Schema, ValueKind, check_json, from_json};
/// let schema = Schema::of([("views", ValueKind::Integer)])?;
/// let json = serde_json::json!({"views": {"_gt": "10"}});
/// let direct = check_json(&json, &schema)?;
/// assert_eq!(direct.variables(), from_json(&json)?.check(&schema)?.variables());
/// assert!(check_json(&serde_json::json!({"secret": {"_eq": 1}}), &schema).is_err());
/// # Ok::<(), workeros_dsl::DslError>(())
/// ```
pub fn check_json(
    v: &serde_json::Value,
    schema: &crate::Schema,
) -> Result<CheckedFilter, DslError> {
    crate::json::text_limit(v)?;
    let mut path = crate::json::Path::new();
    let mut sink = Direct::new(schema);
    let root = crate::json::filter(v, &mut path, 0, &mut sink)?;
    sink.finish(root)
}

/// The checker as a [`Sink`](crate::json::Sink) of the JSON walker: each node is checked as it is
/// read ([`check_json`](crate::check_json)), with the depth and node limits of
/// [`Filter::check`] counted on the way.
pub(crate) struct Direct<'s> {
    cx: Cx<'s>,
    /// The height of each node built and not yet taken by a parent, in order: the walker builds
    /// bottom-up and every node is taken once, by the next `and`/`or`/`not` that closes over it.
    heights: Vec<usize>,
}

impl<'s> Direct<'s> {
    pub(crate) fn new(schema: &'s Schema) -> Self {
        Self {
            cx: Cx::new(schema, None),
            heights: Vec::with_capacity(16),
        }
    }

    pub(crate) fn finish(self, root: CNode) -> Result<CheckedFilter, DslError> {
        Ok(self.cx.finish(root))
    }

    /// Counts a new node of `height` against the limits.
    fn node(&mut self, n: CNode, height: usize) -> Result<CNode, DslError> {
        self.cx.count(height)?;
        self.heights.push(height);
        Ok(n)
    }

    fn list(
        &mut self,
        items: Vec<CNode>,
        empty: bool,
        make: fn(Vec<CNode>) -> CNode,
    ) -> Result<CNode, DslError> {
        match items.len() {
            0 => self.node(CNode::Const(empty), 1),
            // One item is itself: its height stays where it is.
            1 => Ok(items.into_iter().next().unwrap_or(CNode::Const(empty))),
            n => {
                let from = self.heights.len().saturating_sub(n);
                let height = 1 + self.heights.drain(from..).max().unwrap_or(0);
                self.node(make(items), height)
            }
        }
    }
}

impl crate::json::Sink for Direct<'_> {
    type Node = CNode;

    fn cmp(&mut self, c: Comparison, path: &crate::json::Path) -> Result<CNode, DslError> {
        let n = self.cx.cmp(&c).map_err(|e| e.at_if_none(&path.loc()))?;
        self.node(n, 1)
    }

    fn and(&mut self, items: Vec<CNode>) -> Result<CNode, DslError> {
        self.list(items, true, CNode::And)
    }

    fn or(&mut self, items: Vec<CNode>) -> Result<CNode, DslError> {
        self.list(items, false, CNode::Or)
    }

    fn not(&mut self, inner: CNode) -> Result<CNode, DslError> {
        let height = self.heights.pop().unwrap_or(0) + 1;
        self.node(CNode::Not(Box::new(inner)), height)
    }
}

struct Cx<'s> {
    schema: &'s Schema,
    /// The whole tree, when there is one (for the node count in a limit error).
    root: Option<&'s Filter>,
    /// Nodes seen so far: the limits are checked during the walk (a tree built in code is held
    /// to them too), before any recursion could run deep.
    nodes: usize,
    vars: Vec<Var>,
    has_regex: bool,
    /// `matches` comparisons seen so far.
    regexes: usize,
    /// Literal values seen so far (list items included).
    values: usize,
    now_uses: usize,
}

impl<'s> Cx<'s> {
    fn new(schema: &'s Schema, root: Option<&'s Filter>) -> Self {
        Self {
            schema,
            root,
            nodes: 0,
            vars: Vec::new(),
            has_regex: false,
            regexes: 0,
            values: 0,
            now_uses: 0,
        }
    }

    fn finish(self, root: CNode) -> CheckedFilter {
        CheckedFilter {
            root,
            vars: self.vars,
            has_regex: self.has_regex,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            schema: self.schema.id,
            now_uses: self.now_uses,
            nodes: self.nodes,
        }
    }

    /// Counts one node at `depth` against the limits.
    fn count(&mut self, depth: usize) -> Result<(), DslError> {
        if depth > MAX_DEPTH {
            return Err(DslError::limit(
                format!("the filter nests deeper than {MAX_DEPTH} levels"),
                Loc::None,
            ));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            let msg = match self.root {
                Some(root) => format!(
                    "the filter has {} nodes; at most {MAX_NODES} are allowed",
                    root.node_count()
                ),
                None => format!("the filter has more than {MAX_NODES} nodes"),
            };
            return Err(DslError::limit(msg, Loc::None));
        }
        Ok(())
    }

    fn node(&mut self, f: &Filter, depth: usize) -> Result<CNode, DslError> {
        self.count(depth)?;
        Ok(match f {
            Filter::Const(b) => CNode::Const(*b),
            Filter::And(items) => CNode::And(self.nodes(items, depth)?),
            Filter::Or(items) => CNode::Or(self.nodes(items, depth)?),
            Filter::Not(inner) => CNode::Not(Box::new(self.node(inner, depth + 1)?)),
            Filter::Cmp(c) => self.cmp(c)?,
        })
    }

    /// Checks one comparison; an error without a location gets the comparison's.
    fn cmp(&mut self, c: &Comparison) -> Result<CNode, DslError> {
        let loc = &c.loc;
        let name = c.field.as_str();
        let Some(field) = self.schema.get(name) else {
            return Err(DslError::new(
                ErrorKind::UnknownField,
                format!("unknown field `{name}`"),
                loc.clone(),
            )
            .with_field(name));
        };
        if !field.readable {
            return Err(DslError::new(
                ErrorKind::Unreadable,
                format!("cannot filter on field `{name}`: you may not read it"),
                loc.clone(),
            )
            .with_field(name));
        }
        let kind = field.kind;
        if !applies(c.op, kind) {
            return Err(DslError::new(
                ErrorKind::Type,
                format!(
                    "operator `{}` does not apply to {} field `{name}`",
                    c.op.text_name(),
                    kind_name(kind)
                ),
                loc.clone(),
            )
            .with_field(name)
            .with_help(format!("{} fields take {}", kind_name(kind), ops_for(kind))));
        }
        let arg = self
            .arg(c.op, kind, &c.arg, name)
            .map_err(|e| e.at_if_none(loc).with_field(name))?;
        Ok(CNode::Cmp(CCmp {
            field: field.clone(),
            op: c.op,
            arg,
        }))
    }

    fn nodes(&mut self, items: &[Filter], depth: usize) -> Result<Vec<CNode>, DslError> {
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            out.push(self.node(i, depth + 1)?);
        }
        Ok(out)
    }

    fn note_var(&mut self, v: &Var) {
        if !matches!(v, Var::Now(_)) && !self.vars.contains(v) {
            self.vars.push(v.clone());
        }
    }

    fn arg(
        &mut self,
        op: Op,
        kind: ValueKind,
        arg: &Operand,
        name: &str,
    ) -> Result<CArg, DslError> {
        let shape_err = || {
            DslError::new(
                ErrorKind::Syntax,
                format!(
                    "wrong number of operands for `{}` on `{name}`",
                    op.text_name()
                ),
                Loc::None,
            )
        };
        match (op.arity(), arg) {
            (Arity::Zero, Operand::None) => Ok(CArg::None),
            (Arity::Two, Operand::Two(a, b)) => Ok(CArg::Two(
                self.scalar(op, kind, a, name)?,
                self.scalar(op, kind, b, name)?,
            )),
            (Arity::One, Operand::One(v)) if op == Op::Regex => match v {
                Value::Str(pattern) => {
                    self.regexes += 1;
                    if self.regexes > MAX_REGEXES {
                        return Err(DslError::limit(
                            format!("the filter has more than {MAX_REGEXES} `matches` comparisons"),
                            Loc::None,
                        ));
                    }
                    let re = regex_lite::RegexBuilder::new(pattern)
                        .size_limit(MAX_REGEX_SIZE)
                        .build()
                        .map_err(|e| {
                            DslError::new(
                                ErrorKind::Value,
                                format!("invalid regular expression for `{name}`: {e}"),
                                Loc::None,
                            )
                        })?;
                    self.has_regex = true;
                    Ok(CArg::Regex(Arc::new(re)))
                }
                _ => Err(DslError::new(
                    ErrorKind::Value,
                    format!("`matches` on `{name}` takes a string literal"),
                    Loc::None,
                )),
            },
            (Arity::One, Operand::One(v)) if matches!(op, Op::In | Op::Nin) => match v {
                Value::List(items) if items.len() > MAX_LIST_LEN => Err(DslError::limit(
                    format!(
                        "a list has {} items; at most {MAX_LIST_LEN} are allowed",
                        items.len()
                    ),
                    Loc::None,
                )),
                Value::List(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for i in items {
                        out.push(self.scalar(op, kind, i, name)?);
                    }
                    Ok(CArg::List(out))
                }
                Value::Var(var @ (Var::UserRoles | Var::UserAttr(_))) => {
                    self.note_var(var);
                    Ok(CArg::ListVar(var.clone()))
                }
                _ => Err(DslError::new(
                    ErrorKind::Value,
                    format!("`{}` on `{name}` takes a list", op.text_name()),
                    Loc::None,
                )
                .with_help("write a list such as [\"a\", \"b\"], or $user.roles")),
            },
            (Arity::One, Operand::One(v)) => Ok(CArg::One(self.scalar(op, kind, v, name)?)),
            _ => Err(shape_err()),
        }
    }

    fn scalar(&mut self, op: Op, kind: ValueKind, v: &Value, name: &str) -> Result<CVal, DslError> {
        let in_list = matches!(op, Op::In | Op::Nin);
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(DslError::limit(
                format!("the filter has more than {MAX_VALUES} values (list items included)"),
                Loc::None,
            )
            .with_help("split the request, or filter on fewer values"));
        }
        match v {
            Value::Var(var) => {
                match var {
                    Var::Now(_) if kind != ValueKind::Timestamp => {
                        return Err(DslError::new(
                            ErrorKind::Type,
                            format!(
                                "`$now` compares only with timestamp fields, and `{name}` is {}",
                                kind_name(kind)
                            ),
                            Loc::None,
                        ));
                    }
                    Var::Now(_) if in_list => {
                        return Err(DslError::new(
                            ErrorKind::Value,
                            "`$now` cannot be an item of a list",
                            Loc::None,
                        ));
                    }
                    Var::Now(Some(shift))
                        if shift.amount.unsigned_abs() > MAX_SHIFT.unsigned_abs() =>
                    {
                        return Err(DslError::new(
                            ErrorKind::Value,
                            format!("`$now` can shift by at most {MAX_SHIFT} units"),
                            Loc::None,
                        ));
                    }
                    Var::Now(_) => self.now_uses += 1,
                    Var::UserRoles => {
                        return Err(DslError::new(
                            ErrorKind::Value,
                            "`$user.roles` is a list; use it as the right side of `in` or `not in`",
                            Loc::None,
                        ));
                    }
                    _ => {}
                }
                self.note_var(var);
                Ok(CVal::Var(var.clone()))
            }
            Value::List(_) => Err(DslError::new(
                ErrorKind::Value,
                format!(
                    "`{}` on `{name}` takes a single value, not a list",
                    op.text_name()
                ),
                Loc::None,
            )),
            lit => coerce(lit, kind).map(CVal::Lit).ok_or_else(|| {
                DslError::new(
                    ErrorKind::Value,
                    format!(
                        "{} is not a valid {} for field `{name}`",
                        describe(lit),
                        kind_name(kind)
                    ),
                    Loc::None,
                )
            }),
        }
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("`\"{}\"`", clip(s)),
        Value::Int(i) => format!("`{i}`"),
        Value::Float(x) => format!("`{x:?}`"),
        Value::Bool(b) => format!("`{b}`"),
        Value::List(_) => "a list".into(),
        Value::Var(v) => format!("`{}`", crate::print::var_text(v)),
    }
}

/// Coerces a literal to `kind`, or `None` when it does not fit.
pub(crate) fn coerce(v: &Value, kind: ValueKind) -> Option<Scalar> {
    match (kind, v) {
        // NUL cannot be stored by PostgreSQL and ends a LIKE/GLOB pattern early on SQLite (a
        // needle "\0" would match everything): text with NUL never coerces. Nor does text over
        // the string limit (a variable is not held to the parser's limits otherwise).
        (ValueKind::Text, Value::Str(s)) if s.len() > MAX_STRING_LEN || crate::ast::has_nul(s) => {
            None
        }
        (ValueKind::Text, Value::Str(s)) => Some(Scalar::Text(s.clone())),
        (ValueKind::Text, Value::Int(i)) => Some(Scalar::Text(i.to_string().into())),
        (ValueKind::Integer, Value::Int(i)) => Some(Scalar::Int(*i)),
        (ValueKind::Integer, Value::Float(x)) => float_to_int(*x).map(Scalar::Int),
        (ValueKind::Integer, Value::Str(s)) => s
            .parse::<i64>()
            .ok()
            .or_else(|| s.parse::<f64>().ok().and_then(float_to_int))
            .map(Scalar::Int),
        (ValueKind::Number, Value::Int(i)) => Some(Scalar::Float(*i as f64)),
        (ValueKind::Number, Value::Float(x)) if x.is_finite() => Some(Scalar::Float(*x)),
        (ValueKind::Number, Value::Str(s)) => s
            .parse::<f64>()
            .ok()
            .filter(|x| {
                x.is_finite()
                    && !s.contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
            })
            .map(Scalar::Float),
        (ValueKind::Boolean, Value::Bool(b)) => Some(Scalar::Bool(*b)),
        (ValueKind::Boolean, Value::Str(s)) => match s.as_str() {
            "true" => Some(Scalar::Bool(true)),
            "false" => Some(Scalar::Bool(false)),
            _ => None,
        },
        (ValueKind::Boolean, Value::Int(i)) => match i {
            0 => Some(Scalar::Bool(false)),
            1 => Some(Scalar::Bool(true)),
            _ => None,
        },
        (ValueKind::Timestamp, Value::Str(s)) => timefmt::parse_timestamp(s).map(Scalar::Ts),
        (ValueKind::Uuid, Value::Str(s)) => Uuid::try_parse(s).ok().map(Scalar::Uuid),
        _ => None,
    }
}

/// An integral float inside the i64 range.
fn float_to_int(x: f64) -> Option<i64> {
    // 2^63 is exactly representable; every integral float below it fits in i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (x.is_finite() && x.fract() == 0.0 && (-LIMIT..LIMIT).contains(&x)).then_some(x as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FieldSpec, parse};

    fn schema() -> Schema {
        let mut s = Schema::of([
            ("t", ValueKind::Text),
            ("i", ValueKind::Integer),
            ("n", ValueKind::Number),
            ("b", ValueKind::Boolean),
            ("j", ValueKind::Json),
            ("ts", ValueKind::Timestamp),
            ("u", ValueKind::Uuid),
        ])
        .unwrap();
        s.add(
            FieldSpec::new("secret", ValueKind::Text)
                .unwrap()
                .readable(false),
        )
        .unwrap();
        s.add(
            FieldSpec::new("created_at", ValueKind::Timestamp)
                .unwrap()
                .key("createdAt"),
        )
        .unwrap();
        s.alias("createdAt", "created_at").unwrap();
        s
    }

    fn check(src: &str) -> Result<CheckedFilter, DslError> {
        parse(src).unwrap().check(&schema())
    }

    #[test]
    fn regex_and_value_limits() {
        let some = vec!["t matches 'a'"; MAX_REGEXES].join(" or ");
        assert!(check(&some).is_ok());
        let many = vec!["t matches 'a'"; MAX_REGEXES + 1].join(" or ");
        let e = check(&many).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Limit, "{e}");
        // A pattern that compiles past the size limit is refused.
        assert!(check("t matches '(a|b|c|d){1000}'").is_err());
        // Literal values across lists count together.
        let list = (0..MAX_LIST_LEN).map(|i| i.to_string()).collect::<Vec<_>>();
        let in_list = format!("i in [{}]", list.join(","));
        let two = format!("{in_list} or {in_list}");
        assert!(check(&two).is_ok());
        let three = format!("{two} or i = 1");
        let e = check(&three).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Limit, "{e}");
    }

    #[test]
    fn json_form_is_held_to_a_size_limit() {
        let long = "x".repeat(MAX_STRING_LEN);
        let items: Vec<_> = (0..crate::limits::MAX_JSON_LEN / MAX_STRING_LEN + 1)
            .map(|_| serde_json::json!({"t": {"_eq": long}}))
            .collect();
        let f = serde_json::json!({ "_or": items });
        let e = check_json(&f, &schema()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Limit, "{e}");
        assert!(crate::from_json(&f).is_err());
    }

    #[test]
    fn coercion() {
        assert!(check(r#"i = "5""#).is_ok());
        assert!(check("i = 5.0").is_ok());
        assert!(check("i = 5.5").is_err());
        assert!(check(r#"i = "5.5""#).is_err());
        assert!(check("n = 5").is_ok());
        assert!(check(r#"n = "inf""#).is_err());
        assert!(check(r#"b = "true""#).is_ok());
        assert!(check("b = 2").is_err());
        assert!(check(r#"ts > "2024-01-01T00:00:00+02:00""#).is_ok());
        assert!(check(r#"ts > "tomorrow""#).is_err());
        assert!(check(r#"u = "8f14e45f-ceea-467f-a8f7-7e4d2f3e2c1a""#).is_ok());
        assert!(check(r#"u = "x""#).is_err());
        assert!(check("t = 5").is_ok());
        let e = check(r#"i > "abc""#).unwrap_err();
        assert_eq!(e.field(), Some("i"));
        assert!(e.to_string().contains("at 1:1"), "{e}");
    }

    #[test]
    fn operator_types() {
        assert!(check("j is empty").is_ok());
        assert!(check("j = 1").is_err());
        assert!(check("b < true").is_err());
        assert!(check("u contains 'a'").is_err());
        assert!(check("i contains '1'").is_err());
        assert!(check("t between 'a' and 'b'").is_ok());
        assert!(check("t matches '^a'").is_ok());
        assert!(check("t matches '('").is_err());
        let pairs = |k| Op::ALL.iter().filter(|op| applies(**op, k)).count();
        assert_eq!(pairs(ValueKind::Text), 27);
        assert_eq!(pairs(ValueKind::Integer), 14);
        assert_eq!(pairs(ValueKind::Boolean), 8);
        assert_eq!(pairs(ValueKind::Json), 4);
    }

    #[test]
    fn fields_and_variables() {
        assert_eq!(
            check("nope = 1").unwrap_err().kind(),
            ErrorKind::UnknownField
        );
        let e = check("secret = 'x'").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unreadable);
        assert_eq!(e.code(), workeros_core::ErrorCode::Forbidden);
        assert!(check("createdAt > $now(-1 day) && created_at < $now").is_ok());
        assert!(check("t = $now").is_err());
        assert!(check("t = $user.roles").is_err());
        assert!(check("t in $user.roles").is_ok());
        assert!(check("t in $user.id").is_err());
        assert!(check("ts in [$now]").is_err());
        let c = check("t = $user.id && t = $user.id && t in $user.roles && ts < $now").unwrap();
        assert_eq!(c.variables(), &[Var::UserId, Var::UserRoles]);
    }
}

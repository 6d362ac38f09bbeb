//! What an index over many bound filters needs: the equalities a filter requires of every row it
//! matches, and the value a row has for them, normalised exactly as the matcher reads it.

use crate::ast::Op;
use crate::bind::{BArg, BNode, BoundFilter, Origin};
use crate::check::{CheckedFilter, Scalar};
use crate::matcher::{Cell, cell};
use crate::schema::ValueKind;
use serde_json::Value as Json;
use std::sync::Arc;
use workeros_core::Subject;

/// A value an equality index is keyed by: a row's value for a field as the matcher compares it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EqKey {
    /// A text value.
    Text(smol_str::SmolStr),
    /// An integer value.
    Int(i64),
    /// A boolean value.
    Bool(bool),
    /// A UUID value.
    Uuid(uuid::Uuid),
}

impl EqKey {
    /// The key of a row's value `v` for a field of `kind`, read as the matcher reads it; `None`
    /// when the value is null, does not fit the kind, or the kind is not indexable (numbers,
    /// instants, JSON): such a row can only be judged by running the filters.
    pub fn of(kind: ValueKind, v: &Json) -> Option<EqKey> {
        match cell(kind, v) {
            Cell::Text(t) => Some(EqKey::Text(t.into())),
            Cell::Int(i) => Some(EqKey::Int(i)),
            Cell::Bool(b) => Some(EqKey::Bool(b)),
            Cell::Uuid(u) => Some(EqKey::Uuid(u)),
            _ => None,
        }
    }

    fn of_scalar(s: &Scalar) -> Option<EqKey> {
        match s {
            Scalar::Text(t) => Some(EqKey::Text(t.clone())),
            Scalar::Int(i) => Some(EqKey::Int(*i)),
            Scalar::Bool(b) => Some(EqKey::Bool(*b)),
            Scalar::Uuid(u) => Some(EqKey::Uuid(*u)),
            Scalar::Float(_) | Scalar::Ts(_) => None,
        }
    }
}

/// An equality every row a filter matches satisfies: the row's value under `key` (its wire
/// name), read as a field of `kind`, is `value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Equality {
    /// The row key of the field.
    pub key: Arc<str>,
    /// The field's kind.
    pub kind: ValueKind,
    /// The value.
    pub value: EqKey,
}

impl Equality {
    /// Whether `row` has the value (the index's answer for it).
    pub fn holds(&self, row: &serde_json::Map<String, Json>) -> bool {
        row.get(&*self.key)
            .and_then(|v| EqKey::of(self.kind, v))
            .is_some_and(|k| k == self.value)
    }
}

impl BoundFilter {
    /// The equalities `field = literal` among the filter's top-level conjuncts: a row the filter
    /// matches has every one of them (so a set of filters can be indexed by them, and a row
    /// judged only against the filters whose equalities it has).
    pub fn equalities(&self) -> Vec<Equality> {
        let items: &[BNode] = match &self.root {
            BNode::And(items) => items,
            other => std::slice::from_ref(other),
        };
        items
            .iter()
            .filter_map(|n| match n {
                BNode::Cmp(c) if c.op == Op::Eq => match &c.arg {
                    BArg::One(v) => EqKey::of_scalar(&v.v).map(|value| Equality {
                        key: c.field.key.clone(),
                        kind: c.field.kind,
                        value,
                    }),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Whether the filter was bound with a `$now` value (it must be bound again to judge a row
    /// at another instant).
    pub fn uses_now(&self) -> bool {
        fn walk(n: &BNode) -> bool {
            match n {
                BNode::Const(_) => false,
                BNode::And(items) | BNode::Or(items) => items.iter().any(walk),
                BNode::Not(inner) => walk(inner),
                BNode::Cmp(c) => match &c.arg {
                    BArg::One(v) => v.origin != Origin::Fixed,
                    BArg::Two(a, b) => a.origin != Origin::Fixed || b.origin != Origin::Fixed,
                    _ => false,
                },
            }
        }
        walk(&self.root)
    }
}

impl CheckedFilter {
    /// Whether the filter reads `$now`.
    pub fn uses_now(&self) -> bool {
        self.now_uses > 0
    }

    /// The values of the subject variables the filter reads, in [`variables`](Self::variables)
    /// order: two subjects with equal binding keys bind the filter to the same thing at the same
    /// instant (so their bound filters can be shared).
    pub fn binding_key(&self, subject: &Subject) -> Vec<Option<Json>> {
        self.vars
            .iter()
            .map(|v| crate::bind::var_value(subject, v))
            .collect()
    }
}

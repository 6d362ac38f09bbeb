//! Errors as data: a kind, a message, where, what was found, and what to do.

use workeros_core::{ErrorBody, ErrorCode};

/// Where in the input an error is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Loc {
    /// Nowhere in particular (a tree built in code).
    #[default]
    None,
    /// A place in the text form: 1-based line and column (in characters), and the byte offset.
    Text {
        /// Line, from 1.
        line: u32,
        /// Column in characters, from 1.
        column: u32,
        /// Byte offset, from 0.
        offset: usize,
    },
    /// A place in the JSON form, as a JSON pointer (`/_and/0/status/_eq`).
    Json(smol_str::SmolStr),
}

impl Loc {
    /// The location of byte `offset` in `src`.
    pub fn in_text(src: &str, offset: usize) -> Loc {
        let offset = offset.min(src.len());
        let before = src.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Loc::Text {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            offset,
        }
    }
}

impl Loc {
    /// The place as the error body's `at` carries it: `line:column` in the text form, the JSON
    /// pointer in the JSON form (`""` is the whole filter); `None` for no place.
    pub fn wire(&self) -> Option<String> {
        match self {
            Loc::None => None,
            Loc::Text { line, column, .. } => Some(format!("{line}:{column}")),
            Loc::Json(p) => Some(p.to_string()),
        }
    }
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loc::None => Ok(()),
            Loc::Text { line, column, .. } => write!(f, "{line}:{column}"),
            Loc::Json(p) if p.is_empty() => f.write_str("the top of the JSON filter"),
            Loc::Json(p) => write!(f, "`{p}`"),
        }
    }
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is not a filter (text or JSON syntax).
    Syntax,
    /// The input exceeds a limit (length, depth, nodes, list size, string length).
    Limit,
    /// A field that the schema does not have.
    UnknownField,
    /// A field the subject may not read (filtering on it would be an oracle).
    Unreadable,
    /// An operator that does not apply to the field's type.
    Type,
    /// A literal that does not coerce to the field's type.
    Value,
    /// Something this path cannot do (`_regex` in SQL).
    Unsupported,
}

/// An error of the DSL: parse, check or compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct DslError(Box<Inner>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    message: String,
    loc: Loc,
    found: Option<String>,
    field: Option<String>,
    help: Option<String>,
}

/// Shortens user input for a message.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

impl DslError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>, loc: Loc) -> Self {
        Self(Box::new(Inner {
            kind,
            message: message.into(),
            loc,
            found: None,
            field: None,
            help: None,
        }))
    }

    pub(crate) fn syntax(message: impl Into<String>, loc: Loc) -> Self {
        Self::new(ErrorKind::Syntax, message, loc)
    }

    pub(crate) fn limit(message: impl Into<String>, loc: Loc) -> Self {
        Self::new(ErrorKind::Limit, message, loc)
    }

    pub(crate) fn found(mut self, found: impl AsRef<str>) -> Self {
        self.0.found = Some(clip(found.as_ref()));
        self
    }

    pub(crate) fn with_field(mut self, field: impl Into<String>) -> Self {
        self.0.field = Some(field.into());
        self
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The shared error code: FORBIDDEN for an unreadable field, VALIDATION otherwise.
    pub fn code(&self) -> ErrorCode {
        match self.0.kind {
            ErrorKind::Unreadable => ErrorCode::Forbidden,
            _ => ErrorCode::Validation,
        }
    }

    /// The message without location (`expected an operator after field `status``).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Where.
    pub fn loc(&self) -> &Loc {
        &self.0.loc
    }

    /// What was found instead, when that is known.
    pub fn found_text(&self) -> Option<&str> {
        self.0.found.as_deref()
    }

    /// The field the error is about.
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }

    /// What to do about it.
    pub fn help(&self) -> Option<&str> {
        self.0.help.as_deref()
    }

    /// The HTTP error body: the message (with the place and help, as [`Display`](std::fmt::Display)
    /// writes it), the field, and the place and help as data (`at`, `help`).
    pub fn body(&self) -> ErrorBody {
        let mut body = ErrorBody::new(self.code(), self.to_string());
        if let Some(f) = self.field() {
            body = body.with_field(f);
        }
        if let Some(at) = self.loc().wire() {
            body = body.with_at(at);
        }
        if let Some(h) = self.help() {
            body = body.with_help(h);
        }
        body
    }

    pub(crate) fn at_if_none(mut self, loc: &Loc) -> Self {
        if self.0.loc == Loc::None {
            self.0.loc = loc.clone();
        }
        self
    }

    fn render(&self) -> String {
        let mut s = self.0.message.clone();
        if self.0.loc != Loc::None {
            s.push_str(" at ");
            s.push_str(&self.0.loc.to_string());
        }
        if let Some(found) = &self.0.found {
            s.push_str(", found `");
            s.push_str(found);
            s.push('`');
        }
        if let Some(help) = &self.0.help {
            s.push_str(" (");
            s.push_str(help);
            s.push(')');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_locations() {
        let src = "a = 1\n  && é = 2";
        assert_eq!(
            Loc::in_text(src, 0),
            Loc::Text {
                line: 1,
                column: 1,
                offset: 0
            }
        );
        let off = src.find('=').unwrap_or(0);
        assert_eq!(Loc::in_text(src, off).to_string(), "1:3");
        let off = src.rfind('=').unwrap_or(0);
        assert_eq!(Loc::in_text(src, off).to_string(), "2:8");
        assert_eq!(Loc::in_text(src, off).wire().as_deref(), Some("2:8"));
        assert_eq!(Loc::Json("/a/_eq".into()).wire().as_deref(), Some("/a/_eq"));
        assert_eq!(Loc::None.wire(), None);
    }
}

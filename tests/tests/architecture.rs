//! ARCHITECTURE.md stays true of the tree, and the tree keeps its shape: every source file under
//! a crate's `src/` (and every integration test of `tests/`) is named in that crate's section of
//! ARCHITECTURE.md; every source file opens with a module doc; no source file reaches 1,000
//! lines; and within the library crates (the DSL aside, see [`LIBRARIES`]) the files import one
//! another without a cycle.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's crates with a `src/`, as ARCHITECTURE.md heads their sections.
const CRATES: [&str; 13] = [
    "workeros",
    "workeros-core",
    "workeros-dsl",
    "workeros-store",
    "workeros-auth",
    "workeros-adopt",
    "workeros-events",
    "examples/dsl",
    "examples/server",
    "examples/embed",
    "examples/actix",
    "tests",
    "benches",
];

/// The library crates whose files must not import one another in a cycle. `workeros-dsl` is not
/// among them yet: its bound filter carries its matcher program and a resolved row carries
/// matcher cells, so `bind.rs`, `check.rs`, `matcher.rs` and `schema.rs` import one another (the
/// matcher's speed depends on how that code is laid out, so it is split on its own, with the
/// benches).
const LIBRARIES: [&str; 6] = [
    "workeros",
    "workeros-core",
    "workeros-store",
    "workeros-auth",
    "workeros-adopt",
    "workeros-events",
];

/// Longest a source file may be (a longer one holds two concepts).
const MAX_LINES: usize = 1_000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `.rs` file under `dir`, as paths relative to it, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn slash(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// The section of ARCHITECTURE.md headed by `` ### `<krate>/` `` (up to the next heading of its
/// level or above).
fn section<'a>(doc: &'a str, krate: &str) -> &'a str {
    let head = format!("### `{krate}/`");
    let start = doc
        .find(&head)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no section `{head}`"));
    let rest = &doc[start + head.len()..];
    let end = [rest.find("\n### "), rest.find("\n## ")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn every_source_file_is_in_the_map_and_says_what_it_owns() {
    let root = root();
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    let mut undocumented = Vec::new();
    let mut long = Vec::new();
    for krate in CRATES {
        let text = section(&doc, krate);
        let src = root.join(krate).join("src");
        for rel in rust_files(&src) {
            let name = slash(&rel);
            if !text.contains(&format!("`{name}`")) {
                missing.push(format!("{krate}/src/{name}"));
            }
            let body = std::fs::read_to_string(src.join(&rel)).unwrap();
            let first = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if !first.starts_with("//!") {
                undocumented.push(format!("{krate}/src/{name}"));
            }
            let n = body.lines().count();
            if n >= MAX_LINES {
                long.push(format!("{krate}/src/{name}: {n} lines"));
            }
        }
    }
    // The integration tests of `tests/`, by file name.
    let text = section(&doc, "tests");
    for rel in rust_files(&root.join("tests/tests")) {
        let name = slash(&rel);
        if !text.contains(&format!("`{name}`")) {
            missing.push(format!("tests/tests/{name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "name these files in their crate's section of ARCHITECTURE.md (in backticks, as their \
         path under src/): {missing:#?}"
    );
    assert!(
        undocumented.is_empty(),
        "open these files with a module doc (`//!`) that says in one sentence what they own: \
         {undocumented:#?}"
    );
    assert!(
        long.is_empty(),
        "split these files (one file, one concept; under {MAX_LINES} lines): {long:#?}"
    );
}

/// Where a library may name a system table (`SystemTable::new`): each component's schema module,
/// and the migration mechanism (its own `migrations` table).
const NAMES_TABLES: [&str; 4] = [
    "workeros-store/src/schema.rs",
    "workeros-store/src/migrate/mod.rs",
    "workeros-auth/src/schema.rs",
    "workeros-events/src/schema.rs",
];

#[test]
fn system_tables_are_named_only_where_their_migrations_are() {
    let root = root();
    let mut stray = Vec::new();
    for krate in LIBRARIES.iter().chain(["workeros-dsl"].iter()) {
        let src = root.join(krate).join("src");
        for rel in rust_files(&src) {
            let path = format!("{krate}/src/{}", slash(&rel));
            let body = std::fs::read_to_string(src.join(&rel)).unwrap();
            let code = code_of(&body);
            if code.contains("SystemTable::new(") && !NAMES_TABLES.contains(&path.as_str()) {
                stray.push(path);
            }
        }
    }
    assert!(
        stray.is_empty(),
        "these files name a system table: declare it in the owning component's schema module,          next to the migration that creates it, and use that constant: {stray:#?}"
    );
    // And every name a component declares is its own: no two components share one.
    let mut seen = BTreeMap::new();
    for c in [
        workeros_store::SCHEMA,
        workeros_auth::SCHEMA,
        workeros_events::SCHEMA,
    ] {
        for t in c.tables() {
            if let Some(other) = seen.insert(t.name(), c.name()) {
                panic!("`{t}` is declared by `{other}` and `{}`", c.name());
            }
        }
    }
    assert!(!seen.contains_key(workeros_store::migrate::MIGRATIONS.name()));
}

/// Source text without comments, string and character literals, and the trailing
/// `#[cfg(test)]` module.
fn code_of(src: &str) -> String {
    let src = match src.find("\n#[cfg(test)]\nmod ") {
        Some(i) => &src[..i],
        None => src,
    };
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !ident_char(b.get(i.wrapping_sub(1)).copied())
        {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (next == Some('\\') || b.get(i + 2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\u{..}'); a lifetime ('a) is kept.
            i += 1;
            while i < b.len() && b[i] != '\'' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The paths that start at `crate::`, `super::` or `self::` in `code`, each as its segments
/// (`use crate::a::{b, c::d}` gives `crate a b` and `crate a c d`). Re-exports (`pub use`,
/// `pub(…) use`) are left out: they shape a module's public face, not what it uses.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let b: Vec<char> = code.chars().collect();
    let mut i = 0;
    let mut skip_until = 0;
    while i < b.len() {
        // `pub use …;` and `pub(crate) use …;`: skip to the `;`.
        if i >= skip_until && at_word(&b, i, "pub") {
            let mut j = i + 3;
            if b.get(j) == Some(&'(') {
                while j < b.len() && b[j] != ')' {
                    j += 1;
                }
                j += 1;
            }
            while b.get(j).is_some_and(|c| c.is_whitespace()) {
                j += 1;
            }
            if at_word(&b, j, "use") {
                while j < b.len() && b[j] != ';' {
                    j += 1;
                }
                i = j;
                continue;
            }
        }
        for start in ["crate", "super", "self"] {
            if at_word(&b, i, start) && b.get(i + start.len()) == Some(&':') {
                let mut j = i;
                parse_tree(&b, &mut j, Vec::new(), &mut out);
                skip_until = j;
                i = j;
                break;
            }
        }
        i += 1;
    }
    out
}

/// Whether `word` starts at `i` as a whole word.
fn at_word(b: &[char], i: usize, word: &str) -> bool {
    !ident_char(i.checked_sub(1).and_then(|k| b.get(k)).copied())
        && word
            .chars()
            .enumerate()
            .all(|(k, c)| b.get(i + k) == Some(&c))
        && !ident_char(b.get(i + word.len()).copied())
}

/// Parses `a::b::{c, d::e}` at `*i` into full paths under `prefix`.
fn parse_tree(b: &[char], i: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    loop {
        skip_ws(b, i);
        if b.get(*i) == Some(&'{') {
            *i += 1;
            loop {
                skip_ws(b, i);
                match b.get(*i) {
                    Some('}') => {
                        *i += 1;
                        return;
                    }
                    Some(',') => *i += 1,
                    None => return,
                    _ => {
                        let before = *i;
                        parse_tree(b, i, prefix.clone(), out);
                        if *i == before {
                            *i += 1;
                        }
                    }
                }
            }
        }
        let start = *i;
        while ident_char(b.get(*i).copied()) {
            *i += 1;
        }
        if *i == start {
            out.push(prefix);
            return;
        }
        prefix.push(b[start..*i].iter().collect());
        if b.get(*i) == Some(&':') && b.get(*i + 1) == Some(&':') {
            *i += 2;
        } else {
            // `as name`, `::<T>`, `(`, `;` …: the path ends here.
            out.push(prefix);
            return;
        }
    }
}

fn skip_ws(b: &[char], i: &mut usize) {
    while b.get(*i).is_some_and(|c| c.is_whitespace()) {
        *i += 1;
    }
}

/// One library crate's module tree: each module (by path) with its file, and what its
/// re-exports (`pub use m::{A, B}`) bring in from where.
struct Tree {
    files: BTreeMap<Vec<String>, PathBuf>,
    reexports: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>,
}

fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "lib" || l == "mod") {
        parts.pop();
    }
    parts
}

fn tree_of(src: &Path) -> Tree {
    let mut files = BTreeMap::new();
    let mut reexports = BTreeMap::new();
    for rel in rust_files(src) {
        if rel.starts_with("bin") || rel == Path::new("main.rs") {
            continue;
        }
        let m = module_of(&rel);
        let code = code_of(&std::fs::read_to_string(src.join(&rel)).unwrap());
        let mut names = BTreeMap::new();
        for stmt in code.split(';') {
            let s = stmt.trim_start();
            let Some(rest) = s.strip_prefix("pub use ").or_else(|| {
                s.strip_prefix("pub(crate) use ")
                    .or_else(|| s.strip_prefix("pub(super) use "))
            }) else {
                continue;
            };
            let b: Vec<char> = rest.chars().collect();
            let mut leaves = Vec::new();
            let mut i = 0;
            parse_tree(&b, &mut i, Vec::new(), &mut leaves);
            for leaf in leaves {
                if let Some(last) = leaf.last() {
                    names.insert(last.clone(), leaf.clone());
                }
            }
        }
        reexports.insert(m.clone(), names);
        files.insert(m, rel);
    }
    Tree { files, reexports }
}

impl Tree {
    /// The module a path used in module `from` leads to (`None`: outside the crate's files, or
    /// the crate root).
    fn resolve(&self, from: &[String], path: &[String]) -> Option<Vec<String>> {
        let mut at: Vec<String> = match path.first().map(String::as_str) {
            Some("crate") => Vec::new(),
            Some("super") => from[..from.len().saturating_sub(1)].to_vec(),
            Some("self") => from.to_vec(),
            _ => return None,
        };
        let mut rest = &path[1..];
        while let Some(seg) = rest.first() {
            if seg == "super" {
                at.pop();
                rest = &rest[1..];
                continue;
            }
            let mut child = at.clone();
            child.push(seg.clone());
            if self.files.contains_key(&child) {
                at = child;
                rest = &rest[1..];
                continue;
            }
            // A name the module re-exports from another module of the crate.
            if let Some(target) = self.reexports.get(&at).and_then(|r| r.get(seg)) {
                let mut via = vec!["self".to_owned()];
                if matches!(
                    target.first().map(String::as_str),
                    Some("crate" | "super" | "self")
                ) {
                    via.clear();
                }
                via.extend(target.iter().cloned());
                if let Some(m) = self.resolve(&at_or_self(&at), &via) {
                    return Some(m);
                }
            }
            break;
        }
        Some(at)
    }
}

/// The module path a `self::…` resolution starts from (the module itself).
fn at_or_self(at: &[String]) -> Vec<String> {
    at.to_vec()
}

/// The groups of files that import one another (strongly connected, more than one file each).
fn tangles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    // Kosaraju: finish order on the graph, then components on the reversed graph.
    fn order(
        n: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        seen: &mut BTreeSet<Vec<String>>,
        out: &mut Vec<Vec<String>>,
    ) {
        if !seen.insert(n.clone()) {
            return;
        }
        for m in edges.get(n).into_iter().flatten() {
            order(m, edges, seen, out);
        }
        out.push(n.clone());
    }
    let mut seen = BTreeSet::new();
    let mut finished = Vec::new();
    for n in edges.keys() {
        order(n, edges, &mut seen, &mut finished);
    }
    let mut reverse: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (n, ms) in edges {
        for m in ms {
            reverse.entry(m.clone()).or_default().insert(n.clone());
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for n in finished.iter().rev() {
        let mut group = Vec::new();
        order(n, &reverse, &mut seen, &mut group);
        if group.len() > 1 {
            group.sort();
            out.push(group);
        }
    }
    out
}

/// The first cycle among the import edges, as the files on it.
fn cycle(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<Vec<String>>> {
    fn visit(
        n: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut c = stack[from..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, edges, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// The import edges between the files of the crate at `src` (the crate root, which declares
/// every module and holds the crate's handle type, is left out).
fn edges_of(src: &Path) -> (Tree, BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) {
    let tree = tree_of(src);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, rel) in &tree.files {
        if m.is_empty() {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(src.join(rel)).unwrap());
        let e = edges.entry(m.clone()).or_default();
        for p in paths(&code) {
            if let Some(to) = tree.resolve(m, &p)
                && !to.is_empty()
                && &to != m
            {
                e.insert(to);
            }
        }
    }
    (tree, edges)
}

#[test]
fn no_file_of_a_library_imports_in_a_cycle() {
    let root = root();
    let mut circles = Vec::new();
    for krate in LIBRARIES {
        let src = root.join(krate).join("src");
        let (tree, edges) = edges_of(&src);
        if let Some(c) = cycle(&edges) {
            let files: Vec<String> = c.iter().map(|m| slash(&tree.files[m])).collect();
            let tangled: Vec<String> = tangles(&edges)
                .iter()
                .map(|g| {
                    let names: Vec<String> = g.iter().map(|m| slash(&tree.files[m])).collect();
                    names.join(", ")
                })
                .collect();
            circles.push(format!(
                "{krate}: {} (files tangled together: {})",
                files.join(" → "),
                tangled.join("; ")
            ));
        }
    }
    assert!(
        circles.is_empty(),
        "these files import one another in a circle; move what they share into a file below \
         them: {circles:#?}"
    );
}

/// The checker itself: a circle it must find, paths it must read.
#[test]
fn the_cycle_check_sees_what_it_should() {
    let code = code_of(
        "use crate::a::{b::C, d};\n// crate::x::y\nlet s = \"crate::z\";\npub use crate::q::R;\nfn f() { super::e::g(); }",
    );
    let p = paths(&code);
    let flat: Vec<String> = p.iter().map(|s| s.join("::")).collect();
    assert_eq!(flat, ["crate::a::b::C", "crate::a::d", "super::e::g"]);
    let mut edges = BTreeMap::new();
    let m = |s: &str| vec![s.to_owned()];
    edges.insert(m("a"), BTreeSet::from([m("b")]));
    edges.insert(m("b"), BTreeSet::from([m("c")]));
    edges.insert(m("c"), BTreeSet::from([m("a")]));
    assert_eq!(cycle(&edges).map(|c| c.len()), Some(4));
    edges.insert(m("c"), BTreeSet::new());
    assert_eq!(cycle(&edges), None);
}

//! docs/architecture.md names only files and items that exist: every backticked path
//! (`crates/…`, `scripts/…`, `migrations/…`, `deploy/…`, `store/src/…`) is a file or
//! folder of the repository, and every backticked `crate::…::item` names an item
//! declared in that crate's sources (a `fn`, type, const, module or variant of that
//! name). A renamed function fails here, not in a reader's head.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::path::{Path, PathBuf};

const CRATES: [&str; 11] = [
    "core",
    "queue",
    "store",
    "workos-api",
    "tls",
    "pull",
    "receiver",
    "worker",
    "cli",
    "testkit",
    "bench",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&p).unwrap());
            out.push('\n');
        }
    }
}

/// True when `name` is declared in `src` (or is a file or folder name there).
fn declared(src: &str, dir: &Path, name: &str) -> bool {
    let kinds = [
        "fn",
        "struct",
        "enum",
        "const",
        "mod",
        "type",
        "trait",
        "static",
        "macro_rules!",
    ];
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let whole = |hay: &str, needle: &str| {
        hay.match_indices(needle)
            .any(|(at, _)| !hay[at + needle.len()..].chars().next().is_some_and(ident))
    };
    if kinds.iter().any(|k| whole(src, &format!("{k} {name}"))) {
        return true;
    }
    // An enum variant or a macro-declared item: a line that starts with the name.
    if src.lines().any(|l| {
        let t = l.trim_start();
        t.starts_with(name)
            && t[name.len()..]
                .chars()
                .next()
                .is_none_or(|c| matches!(c, ',' | ' ' | '(' | '{' | '='))
    }) {
        return true;
    }
    dir.join(format!("{name}.rs")).exists() || dir.join(name).is_dir()
}

#[test]
fn the_architecture_doc_names_only_what_exists() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (i, token) in doc.split('`').enumerate() {
        if i % 2 == 0 || token.contains(' ') {
            continue;
        }
        let path_like = [
            "crates/",
            "scripts/",
            "migrations/",
            "deploy/",
            "docs/",
            "store/src/",
        ]
        .iter()
        .any(|p| token.starts_with(p));
        if path_like {
            checked += 1;
            let p = token.trim_end_matches('/');
            let found = match p.split_once('*') {
                // A glob: some file in that folder starts with what comes before `*`.
                Some((head, _)) => {
                    let (dir, stem) = head.rsplit_once('/').unwrap_or(("", head));
                    std::fs::read_dir(root().join(dir)).is_ok_and(|d| {
                        d.flatten()
                            .any(|e| e.file_name().to_string_lossy().starts_with(stem))
                    })
                }
                None => root().join(p).exists() || root().join("crates").join(p).exists(),
            };
            if !found {
                missing.push(token.to_owned());
            }
            continue;
        }
        let parts: Vec<&str> = token.split("::").collect();
        let krate = parts[0].replace('_', "-");
        if parts.len() < 2 || !CRATES.contains(&krate.as_str()) {
            continue;
        }
        checked += 1;
        let dir = root().join("crates").join(&krate).join("src");
        let mut src = String::new();
        sources(&dir, &mut src);
        let last = parts[parts.len() - 1];
        if !declared(&src, &dir, last) {
            missing.push(token.to_owned());
        }
    }
    assert!(
        checked > 30,
        "only {checked} names checked: the parser missed the doc"
    );
    assert!(
        missing.is_empty(),
        "docs/architecture.md names what does not exist: {missing:?}"
    );
}

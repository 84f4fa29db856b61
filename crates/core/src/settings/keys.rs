//! The keys a settings layer may name, decided once: those of the defaults file
//! (`config/default.toml`), and any key under a table the defaults leave empty (an open
//! map: `database.users_columns`). A key outside them (a misspelt
//! `WORKOS_SYNC__WROKER__BATCH_SIZE`, an unknown key in a `--config` file) would be
//! ignored without a word by the `config` crate; here it is refused by name, with where
//! it came from and the nearest known key. Also how `config show` prints a value, with
//! secrets redacted (tokens, keys, secrets, a URL's password).
//!
//! Failure model: none here; the caller turns an unknown key into a `SettingsError`.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::OnceLock,
};

use config::{Config, File, FileFormat, Value, ValueKind};

/// The defaults' leaf keys, and their tables left empty (open maps).
struct Known {
    leaves: BTreeSet<String>,
    open: BTreeSet<String>,
}

fn known() -> &'static Known {
    static KNOWN: OnceLock<Known> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut k = Known {
            leaves: BTreeSet::new(),
            open: BTreeSet::new(),
        };
        // The defaults file is compiled in and read by every load: it parses.
        let defaults = Config::builder()
            .add_source(File::from_str(super::DEFAULTS_TOML, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize::<config::Map<String, Value>>)
            .unwrap_or_default();
        for (key, v) in flatten(defaults) {
            match v.kind {
                ValueKind::Table(t) if t.is_empty() => k.open.insert(key),
                _ => k.leaves.insert(key),
            };
        }
        k
    })
}

/// Every leaf of `root` by its dotted key (an empty table is a leaf).
pub(super) fn flatten(root: config::Map<String, Value>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut todo: Vec<(String, Value)> = root.into_iter().collect();
    while let Some((key, v)) = todo.pop() {
        match v.kind {
            ValueKind::Table(t) if !t.is_empty() => {
                todo.extend(t.into_iter().map(|(k, v)| (format!("{key}.{k}"), v)));
            }
            _ => {
                out.insert(key, v);
            }
        }
    }
    out
}

/// Settings read although the defaults file does not name them (synonyms).
const SYNONYMS: [&str; 1] = ["amqp.urls"];

/// The keys of `built` that are not settings of workos-sync.
pub(super) fn unknown(built: &BTreeMap<String, Value>) -> Vec<String> {
    let k = known();
    built
        .keys()
        .filter(|key| {
            !k.leaves.contains(*key)
                && !SYNONYMS.contains(&key.as_str())
                && !k.open.contains(*key)
                && !k.open.iter().any(|o| key.starts_with(&format!("{o}.")))
        })
        .cloned()
        .collect()
}

/// Where `key` was set: its `WORKOS_SYNC__…` variable when there is one, else the
/// `--config` file.
pub(super) fn origin(key: &str, env: &HashMap<String, String>) -> String {
    let var = format!("WORKOS_SYNC__{}", key.to_uppercase().replace('.', "__"));
    if env.contains_key(&var) {
        format!("from {var}")
    } else {
        "in the --config file".to_owned()
    }
}

/// The known key nearest to `key`, when one is near enough to be a typo of it.
pub(super) fn nearest(key: &str) -> Option<&'static str> {
    known()
        .leaves
        .iter()
        .map(|k| (strsim::levenshtein(key, k), k))
        .filter(|(d, k)| *d <= (k.len() / 4).max(2))
        .min()
        .map(|(_, k)| k.as_str())
}

/// True for a key whose value is a secret (shown redacted): a name `core::secrets` calls
/// secret, and the settings' own lists and keys of them (`webhook_secrets`, `api_key`).
fn secret(key: &str) -> bool {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    crate::secrets::is_secret_key(leaf) || leaf == "api_key" || leaf.ends_with("_secrets")
}

/// `value` as a TOML value, a secret redacted and a URL's password replaced.
pub(super) fn display(key: &str, value: &Value) -> String {
    if secret(key) {
        let empty = match &value.kind {
            ValueKind::String(s) => s.is_empty(),
            ValueKind::Array(a) => a.is_empty(),
            ValueKind::Nil => true,
            _ => false,
        };
        return if empty {
            "\"\"".to_owned()
        } else {
            "\"<redacted>\"".to_owned()
        };
    }
    let url = key.ends_with("url") || key.ends_with("urls");
    show(&value.kind, url)
}

fn show(kind: &ValueKind, url: bool) -> String {
    match kind {
        ValueKind::Nil => "\"\"".to_owned(),
        ValueKind::String(s) if url => quote(&without_password(s)),
        ValueKind::String(s) => quote(s),
        ValueKind::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|v| show(&v.kind, url))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ValueKind::Table(t) => format!(
            "{{{}}}",
            t.iter()
                .map(|(k, v)| format!("{k} = {}", show(&v.kind, url)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `postgres://u:pw@h/db` → `postgres://u:***@h/db` (a comma-separated list: each); text
/// that is not a URL is kept, unless it holds an `@` (then it may hold a password).
fn without_password(s: &str) -> String {
    s.split(',')
        .map(|part| match url::Url::parse(part.trim()) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                u.to_string()
            }
            Ok(_) => part.to_owned(),
            Err(_) if part.contains('@') => "<redacted>".to_owned(),
            Err(_) => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_near_their_key_and_open_maps_take_any_key() {
        assert_eq!(nearest("wroker.batch_size"), Some("worker.batch_size"));
        assert_eq!(nearest("completely.different"), None);
        let mut built = BTreeMap::new();
        for k in [
            "worker.batch_size",
            "wroker.batch_size",
            "database.users_columns.email",
            "database.users_columnz.email",
        ] {
            built.insert(k.to_owned(), Value::new(None, 1));
        }
        assert_eq!(
            unknown(&built),
            ["database.users_columnz.email", "wroker.batch_size"]
        );
    }

    #[test]
    fn secrets_and_passwords_never_show() {
        let v = |s: &str| Value::new(None, s);
        assert_eq!(display("workos.api_key", &v("sk_live_x")), "\"<redacted>\"");
        assert_eq!(display("workos.api_key", &v("")), "\"\"");
        assert_eq!(display("worker.api_token", &v("t")), "\"<redacted>\"");
        assert_eq!(
            display("database.url", &v("postgres://u:pw@db:5432/x")),
            "\"postgres://u:***@db:5432/x\""
        );
        assert_eq!(
            display("amqp.url", &v("amqp://a:b@h1/%2f,amqp://a:b@h2/%2f")),
            "\"amqp://a:***@h1/%2f,amqp://a:***@h2/%2f\""
        );
        assert_eq!(display("worker.batch_size", &Value::new(None, 100)), "100");
    }
}

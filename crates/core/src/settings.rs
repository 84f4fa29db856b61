//! Settings: one typed struct for every binary, loaded by the `config` crate from the
//! commented defaults file (`config/default.toml`, compiled in), an optional `--config`
//! file, `WORKOS_SYNC__SECTION__KEY` variables and the plain variables of the operator
//! interface (`DATABASE_URL`, `AMQP_URL`, `WORKOS_WEBHOOK_SECRET`, `WORKOS_API_KEY`,
//! `WORKOS_API_BASE_URL`).
//!
//! Failure model: loading fails with [`SettingsError`] naming the bad key; each binary
//! then validates what it needs (`validate_receiver`, …) and refuses to start with a one
//! line reason. Secrets are `SecretString`, so `Debug` never prints them.

use std::{collections::HashMap, net::SocketAddr, path::Path, time::Duration};

use config::{Config, Environment, File, FileFormat};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, de};

/// The defaults file, compiled in so that it is always the bottom layer.
pub const DEFAULTS_TOML: &str = include_str!("../../../config/default.toml");

mod keys;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value the `config` crate could not read or convert (its message names the key).
    /// Not a `source`: the message is the whole story, printed once.
    #[error("configuration: {0}")]
    Load(config::ConfigError),
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// A key that is no setting of workos-sync (a typo would otherwise be ignored).
    #[error("unknown setting {key} ({origin}){hint}")]
    Unknown {
        key: String,
        origin: String,
        hint: String,
    },
}

impl From<config::ConfigError> for SettingsError {
    fn from(e: config::ConfigError) -> Self {
        Self::Load(e)
    }
}

fn invalid(key: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        key,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub receiver: ReceiverSettings,
    pub amqp: AmqpSettings,
    pub database: DatabaseSettings,
    pub worker: WorkerSettings,
    pub reconcile: ReconcileSettings,
    pub verify: VerifySettings,
    pub sync: SyncSettings,
    pub archive: ArchiveSettings,
    pub workos: WorkosSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReceiverSettings {
    pub bind: String,
    pub path: String,
    pub tolerance_secs: u64,
    pub max_body_bytes: usize,
    pub max_inflight_body_bytes: usize,
    pub max_connections: usize,
    #[serde(deserialize_with = "list")]
    pub allowed_ips: Vec<IpNet>,
    #[serde(deserialize_with = "list")]
    pub trusted_proxies: Vec<IpNet>,
    pub confirm_timeout_ms: u64,
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
    /// PEM certificate chain and key for HTTPS on `bind` (both or neither; empty: HTTP).
    pub tls_cert: String,
    pub tls_key: String,
}

impl ReceiverSettings {
    pub fn tolerance(&self) -> Duration {
        Duration::from_secs(self.tolerance_secs)
    }
    pub fn confirm_timeout(&self) -> Duration {
        Duration::from_millis(self.confirm_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmqpSettings {
    /// The broker's nodes, tried in this order (`amqp.url`: a comma-separated list or an
    /// array; `amqp.urls` and `AMQP_URL` set the same list).
    #[serde(deserialize_with = "secret_list")]
    pub url: Vec<SecretString>,
    /// `x-quorum-initial-group-size` of every queue we declare (0: the broker's
    /// `quorum_cluster_size`).
    pub quorum_group_size: u32,
    pub prefix: String,
    pub delivery_limit: u32,
    #[serde(deserialize_with = "list")]
    pub retry_delays_secs: Vec<u64>,
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    pub connect_timeout_ms: u64,
    pub frame_max: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub pool_size: usize,
    pub apply_timeout_secs: u64,
    /// The schema holding every table of workos-sync and its migrations' bookkeeping.
    pub schema: String,
    /// Our users columns mapped onto an adopted table's names (`email = "emailAddress"`).
    #[serde(default)]
    pub users_columns: std::collections::BTreeMap<String, String>,
    /// An adopted users table gets `raw` (WorkOS's user object) too.
    #[serde(default)]
    pub users_raw: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSettings {
    pub http_bind: String,
    pub api_token: SecretString,
    pub lazy_sync_timeout_ms: u64,
    /// Lazy sync calls in flight at once (more: 503 `busy`).
    pub lazy_sync_max_in_flight: usize,
    /// Lazy sync calls started per second (more: 503 `busy`).
    pub lazy_sync_per_second: u32,
    pub prefetch: u16,
    pub batch_size: usize,
    pub partitions: usize,
    pub park_after_secs: u64,
    /// PEM certificate chain and key for HTTPS on `http_bind` (both or neither).
    pub tls_cert: String,
    pub tls_key: String,
}

impl WorkerSettings {
    pub fn lazy_sync_timeout(&self) -> Duration {
        Duration::from_millis(self.lazy_sync_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReconcileSettings {
    pub interval_secs: u64,
    /// Longest one reconciliation pass may take; then it is abandoned (its leader lock
    /// released) and the next interval tries again.
    pub pass_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VerifySettings {
    /// Seconds between drift checks in the worker (0: off).
    pub interval_secs: u64,
    /// Longest one periodic drift check (with its repair) may take.
    pub pass_timeout_secs: u64,
    /// Repair what a periodic check finds (as `verify --repair`).
    pub repair: bool,
    /// A repair removes at most this many rows of one entity; more removes nothing.
    pub max_removals: u64,
    /// … and at most this percentage of the entity's rows that sync wrote.
    pub max_removal_percent: f64,
}

/// `[archive]`: the optional event archive (config/default.toml says what each does).
#[derive(Debug, Clone, Deserialize)]
pub struct ArchiveSettings {
    pub enabled: bool,
    /// Event types kept: exact names, `family.*`, or `*` for every type.
    #[serde(deserialize_with = "list")]
    pub types: Vec<String>,
    /// Whole days of events kept; older days' partitions are dropped.
    pub retention_days: u32,
}

impl ArchiveSettings {
    /// The type filter, or `None` when the archive is off.
    pub fn filter(&self) -> Option<TypeFilter> {
        self.enabled.then(|| TypeFilter::new(&self.types))
    }
}

/// Which event types the archive keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeFilter {
    every: bool,
    exact: std::collections::BTreeSet<String>,
    /// `family.` of each `family.*`.
    prefixes: Vec<String>,
}

impl TypeFilter {
    pub fn new(patterns: &[String]) -> Self {
        let mut f = Self {
            every: false,
            exact: Default::default(),
            prefixes: Vec::new(),
        };
        for p in patterns.iter().map(|p| p.trim()) {
            if p == "*" {
                f.every = true;
            } else if let Some(family) = p.strip_suffix('*') {
                f.prefixes.push(family.to_owned());
            } else if !p.is_empty() {
                f.exact.insert(p.to_owned());
            }
        }
        f
    }

    pub fn matches(&self, event_type: &str) -> bool {
        self.every
            || self.exact.contains(event_type)
            || self.prefixes.iter().any(|p| event_type.starts_with(p))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SyncSettings {
    /// The entities mirrored (`sync.entities`); events of the others are recorded as
    /// ignored.
    #[serde(deserialize_with = "list")]
    pub entities: Vec<crate::entity::Entity>,
    /// What a delete does to the rows of each entity that declares a delete setting
    /// (`sync.<setting>`, e.g. `sync.user_delete`: `Declaration::delete_setting`); a
    /// membership's mode applies also when its user or organization is deleted.
    #[serde(flatten)]
    deletes: std::collections::BTreeMap<String, DeleteMode>,
}

impl SyncSettings {
    /// The mode of `sync.<setting>` (hard when not set).
    pub fn delete_mode(&self, setting: &str) -> DeleteMode {
        self.deletes.get(setting).copied().unwrap_or_default()
    }

    /// The settings that name no entity's delete setting (a typo would otherwise
    /// leave deletes hard without a word).
    pub fn unknown_delete_settings(&self) -> Vec<&str> {
        self.deletes
            .keys()
            .map(String::as_str)
            .filter(|k| {
                !crate::Entity::ALL
                    .iter()
                    .any(|e| e.declaration().delete_setting == Some(*k))
            })
            .collect()
    }
}

/// How a row WorkOS deleted leaves the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum DeleteMode {
    /// The row is removed (a foreign key of the application that blocks it sends the
    /// event to the DLQ at once, naming the constraint).
    #[default]
    Delete,
    /// The row stays with `deleted_at` set (a user's WorkOS personal data cleared), so
    /// the application's foreign keys keep working.
    Soft,
}

impl SyncSettings {
    pub fn entity_set(&self) -> crate::entity::EntitySet {
        crate::entity::EntitySet::of(&self.entities)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkosSettings {
    #[serde(deserialize_with = "secret_list")]
    pub webhook_secrets: Vec<SecretString>,
    pub api_key: SecretString,
    pub api_base_url: String,
    /// This process's share of WorkOS's read limit for the key, per second.
    pub reads_per_second: u32,
    /// Directory Users calls per second per directory (WorkOS allows 4).
    pub directory_users_per_second: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    Json,
    Text,
}

/// A setting's enum read from its name, a wrong one refused with the names allowed (the
/// `config` crate's own message lists none).
macro_rules! named {
    ($ty:ident { $($name:literal => $variant:ident),* $(,)? }) => {
        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($name => Ok(Self::$variant),)*
                    _ => Err(format!(
                        "{s:?} is not one of: {}",
                        [$($name),*].join(", ")
                    )),
                }
            }
        }
    };
}

named!(LogFormat { "json" => Json, "text" => Text });
named!(DeleteMode { "delete" => Delete, "soft" => Soft });

/// Accepts a sequence or a comma-separated string (as environment variables give).
fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr + Deserialize<'de>,
    T::Err: std::fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        Str(String),
    }
    match OneOrMany::<T>::deserialize(d)? {
        OneOrMany::Many(v) => Ok(v),
        OneOrMany::Str(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<T>()
                    .map_err(|e| de::Error::custom(format!("{p:?}: {e}")))
            })
            .collect(),
    }
}

fn secret_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    let raw: Vec<String> = list(d)?;
    Ok(raw.into_iter().map(SecretString::from).collect())
}

/// A schema name that needs no quoting anywhere (we quote it anyway): what `CREATE
/// SCHEMA` accepts unquoted, lowercase, within Postgres's 63-byte identifier limit.
pub fn valid_schema_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
        && !s.starts_with("pg_")
}

/// Refuses a `database.url` that cannot reach Postgres (`postgress//…`, `mysql://…`), which
/// would otherwise be retried forever, saying why without repeating the URL (it may hold
/// a password).
fn check_database_url(s: &str) -> Result<(), SettingsError> {
    const EXPECTED: &str = "expected postgres://user:password@host:port/database (DATABASE_URL)";
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "postgres" | "postgresql") => {
            if u.host_str().is_none_or(str::is_empty) {
                return Err(invalid(
                    "database.url",
                    format!("names no host; {EXPECTED}"),
                ));
            }
            Ok(())
        }
        Ok(u) => Err(invalid(
            "database.url",
            format!(
                "scheme {:?} is not postgres or postgresql; {EXPECTED}",
                u.scheme()
            ),
        )),
        Err(e) => Err(invalid(
            "database.url",
            format!("not a URL ({e}); {EXPECTED}"),
        )),
    }
}

/// The plain variables of the operator interface and the key each overrides.
const PLAIN_VARS: [(&str, &str); 4] = [
    ("DATABASE_URL", "database.url"),
    ("AMQP_URL", "amqp.url"),
    ("WORKOS_API_KEY", "workos.api_key"),
    ("WORKOS_API_BASE_URL", "workos.api_base_url"),
];

/// The layers, bottom up: the defaults, the `--config` file, `WORKOS_SYNC__…` variables,
/// the plain variables of the operator interface.
fn layered(
    config_file: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<Config, SettingsError> {
    let mut builder = Config::builder().add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml));
    if let Some(path) = config_file {
        if !path.exists() {
            return Err(invalid(
                "--config",
                format!("{} does not exist", path.display()),
            ));
        }
        builder = builder.add_source(File::from(path).required(true));
    }
    let prefixed: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("WORKOS_SYNC__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    builder = builder.add_source(
        Environment::with_prefix("WORKOS_SYNC")
            .separator("__")
            .ignore_empty(true)
            .source(Some(prefixed)),
    );
    for (var, key) in PLAIN_VARS {
        if let Some(v) = env.get(var).filter(|v| !v.is_empty()) {
            builder = builder.set_override(key, v.as_str())?;
        }
    }
    if let Some(v) = env.get("WORKOS_WEBHOOK_SECRET").filter(|v| !v.is_empty()) {
        builder = builder.set_override("workos.webhook_secrets", v.as_str())?;
    }
    // `amqp.urls` is a synonym of `amqp.url` (the list of nodes); AMQP_URL beats both.
    if env.get("AMQP_URL").is_none_or(|v| v.is_empty())
        && let Ok(urls) = builder.build_cloned()?.get::<config::Value>("amqp.urls")
    {
        builder = builder.set_override("amqp.url", urls)?;
    }
    Ok(builder.build()?)
}

impl Settings {
    /// Loads from the process environment.
    pub fn load(config_file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_from(config_file, std::env::vars().collect())
    }

    /// Loads from an explicit environment (tests use this instead of mutating the
    /// process environment).
    pub fn load_from(
        config_file: Option<&Path>,
        env: HashMap<String, String>,
    ) -> Result<Self, SettingsError> {
        let built = layered(config_file, &env)?;
        let leaves = keys::flatten(built.clone().try_deserialize()?);
        if let Some(key) = keys::unknown(&leaves).into_iter().next() {
            let hint = keys::nearest(&key)
                .map(|k| format!("; did you mean {k}?"))
                .unwrap_or_default();
            return Err(SettingsError::Unknown {
                origin: keys::origin(&key, &env),
                key,
                hint,
            });
        }
        let settings: Settings = built.try_deserialize()?;
        settings.validate_common()?;
        Ok(settings)
    }

    /// Every setting in effect (the defaults, the `--config` file, the environment), as
    /// `key = value` TOML lines in key order, secrets redacted (`workos-sync config show`).
    pub fn show(
        config_file: Option<&Path>,
        env: HashMap<String, String>,
    ) -> Result<Vec<String>, SettingsError> {
        let built = layered(config_file, &env)?;
        Ok(keys::flatten(built.try_deserialize()?)
            .iter()
            .map(|(k, v)| format!("{k} = {}", keys::display(k, v)))
            .collect())
    }

    fn validate_common(&self) -> Result<(), SettingsError> {
        let p = &self.amqp.prefix;
        if p.is_empty()
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(invalid(
                "amqp.prefix",
                "must be non-empty ASCII letters, digits, '-', '_' or '.'",
            ));
        }
        if self.amqp.url.is_empty() {
            return Err(invalid("amqp.url", "names no broker; set AMQP_URL"));
        }
        check_database_url(self.database.url.expose_secret())?;
        if let Err(e) = self.worker.http_bind.parse::<SocketAddr>() {
            return Err(invalid(
                "worker.http_bind",
                format!(
                    "{:?} is not an address and port ({e}; e.g. 0.0.0.0:8081)",
                    self.worker.http_bind
                ),
            ));
        }
        if self.amqp.frame_max != 0 && self.amqp.frame_max < 4096 {
            return Err(invalid(
                "amqp.frame_max",
                "must be 0 (the broker's choice) or at least 4096, AMQP's minimum",
            ));
        }
        if let Some(unknown) = self.sync.unknown_delete_settings().first() {
            return Err(invalid(
                "sync",
                format!(
                    "{unknown} is not a setting of workos-sync (a typo would leave deletes hard)"
                ),
            ));
        }
        if !valid_schema_name(&self.database.schema) {
            return Err(invalid(
                "database.schema",
                "must be a plain identifier: lowercase letters, digits and _, not starting with a digit, at most 63 bytes",
            ));
        }
        if self.database.apply_timeout_secs == 0 {
            return Err(invalid("database.apply_timeout_secs", "must be positive"));
        }
        if self.worker.park_after_secs == 0 {
            return Err(invalid("worker.park_after_secs", "must be positive"));
        }
        if self.worker.lazy_sync_timeout_ms == 0 {
            return Err(invalid("worker.lazy_sync_timeout_ms", "must be positive"));
        }
        // Zero used to become one without a word; say so instead.
        if self.worker.batch_size == 0 {
            return Err(invalid(
                "worker.batch_size",
                "must be at least 1 (events per apply transaction)",
            ));
        }
        if self.worker.partitions == 0 {
            return Err(invalid(
                "worker.partitions",
                "must be at least 1 (concurrent appliers)",
            ));
        }
        if self.archive.enabled && self.archive.types.iter().all(|t| t.trim().is_empty()) {
            return Err(invalid(
                "archive.types",
                "names no event type while archive.enabled is true (use \"*\" for every type)",
            ));
        }
        if self.amqp.retry_delays_secs.contains(&0) {
            return Err(invalid("amqp.retry_delays_secs", "delays must be positive"));
        }
        if self.amqp.reconnect_min_ms == 0
            || self.amqp.reconnect_min_ms > self.amqp.reconnect_max_ms
        {
            return Err(invalid(
                "amqp.reconnect_min_ms",
                "must be positive and not above reconnect_max_ms",
            ));
        }
        Ok(())
    }

    /// What the receiver needs: a secret, a sane path and bind address, bounded limits.
    pub fn validate_receiver(&self) -> Result<(), SettingsError> {
        let r = &self.receiver;
        if self.webhook_secrets().is_empty() {
            return Err(invalid(
                "workos.webhook_secrets",
                "no webhook secret configured; set WORKOS_WEBHOOK_SECRET",
            ));
        }
        if !r.path.starts_with('/') {
            return Err(invalid("receiver.path", "must start with '/'"));
        }
        r.bind
            .parse::<SocketAddr>()
            .map_err(|e| invalid("receiver.bind", e.to_string()))?;
        if r.tolerance_secs == 0 {
            return Err(invalid("receiver.tolerance_secs", "must be positive"));
        }
        if r.max_body_bytes == 0 {
            return Err(invalid("receiver.max_body_bytes", "must be positive"));
        }
        if r.max_inflight_body_bytes < r.max_body_bytes
            || u32::try_from(r.max_inflight_body_bytes).is_err()
        {
            return Err(invalid(
                "receiver.max_inflight_body_bytes",
                "must be at least receiver.max_body_bytes and below 4 GiB",
            ));
        }
        if r.max_connections == 0 {
            return Err(invalid("receiver.max_connections", "must be positive"));
        }
        if r.confirm_timeout_ms == 0 {
            return Err(invalid("receiver.confirm_timeout_ms", "must be positive"));
        }
        tls_paths("receiver.tls_cert", &r.tls_cert, &r.tls_key)?;
        Ok(())
    }

    /// The receiver's TLS files (`None`: plain HTTP).
    pub fn receiver_tls(&self) -> Result<Option<TlsPaths>, SettingsError> {
        tls_paths(
            "receiver.tls_cert",
            &self.receiver.tls_cert,
            &self.receiver.tls_key,
        )
    }

    /// The worker's TLS files (`None`: plain HTTP).
    pub fn worker_tls(&self) -> Result<Option<TlsPaths>, SettingsError> {
        tls_paths(
            "worker.tls_cert",
            &self.worker.tls_cert,
            &self.worker.tls_key,
        )
    }

    /// The webhook secrets as byte strings, empty entries dropped.
    pub fn webhook_secrets(&self) -> Vec<Vec<u8>> {
        self.workos
            .webhook_secrets
            .iter()
            .map(|s| s.expose_secret().trim().as_bytes().to_vec())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// A port's PEM certificate chain and key paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Both paths set: TLS; neither: none; one alone is a mistake worth refusing.
fn tls_paths(key: &'static str, cert: &str, pkey: &str) -> Result<Option<TlsPaths>, SettingsError> {
    match (cert.trim(), pkey.trim()) {
        ("", "") => Ok(None),
        ("", _) | (_, "") => Err(invalid(
            key,
            "set both the certificate and the key, or neither",
        )),
        (c, k) => Ok(Some(TlsPaths {
            cert: c.into(),
            key: k.into(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_needs_both_files_or_neither() {
        assert_eq!(tls_paths("k", "", "").unwrap(), None);
        assert!(tls_paths("k", "c.pem", "").is_err());
        assert!(tls_paths("k", " ", "k.pem").is_err());
        let p = tls_paths("k", "c.pem", "k.pem").unwrap().unwrap();
        assert_eq!(
            (p.cert.to_str(), p.key.to_str()),
            (Some("c.pem"), Some("k.pem"))
        );
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_unknown_key_is_refused_by_name_with_the_nearest_known_one() {
        let err = Settings::load_from(None, env(&[("WORKOS_SYNC__WROKER__BATCH_SIZE", "5")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unknown setting wroker.batch_size (from WORKOS_SYNC__WROKER__BATCH_SIZE); did you \
             mean worker.batch_size?"
        );
        let err = Settings::load_from(None, env(&[("WORKOS_SYNC__WORKER__NOPE", "1")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unknown setting worker.nope (from WORKOS_SYNC__WORKER__NOPE)"
        );
        // In a file: named as the file's.
        let dir = std::env::temp_dir().join(format!("ws-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "[worker]\nbatch_sise = 10\n").unwrap();
        let err = Settings::load_from(Some(&file), env(&[]))
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            err,
            "unknown setting worker.batch_sise (in the --config file); did you mean \
             worker.batch_size?"
        );
        // An open map takes any key.
        Settings::load_from(
            None,
            env(&[("WORKOS_SYNC__DATABASE__USERS_COLUMNS__EMAIL", "mail")]),
        )
        .unwrap();
    }

    #[test]
    fn bad_values_name_their_key_once_and_what_is_allowed() {
        let load = |pairs: &[(&str, &str)]| {
            Settings::load_from(None, env(pairs))
                .unwrap_err()
                .to_string()
        };
        let err = load(&[("WORKOS_SYNC__LOG__FORMAT", "jsn")]);
        assert!(
            err.contains("log.format") && err.contains("json") && err.contains("text"),
            "{err}"
        );
        let err = load(&[("WORKOS_SYNC__WORKER__HTTP_BIND", "localhost")]);
        assert!(
            err.starts_with("invalid setting worker.http_bind: \"localhost\""),
            "{err}"
        );
        let err = load(&[("WORKOS_SYNC__WORKER__BATCH_SIZE", "lots")]);
        assert!(err.contains("worker.batch_size"), "{err}");
        // One line: no source chain repeating it.
        let e = Settings::load_from(None, env(&[("WORKOS_SYNC__WORKER__BATCH_SIZE", "lots")]))
            .unwrap_err();
        assert!(std::error::Error::source(&e).is_none());
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn a_malformed_database_url_is_refused_without_repeating_it() {
        for (url, says) in [
            ("postgress//u:hunter2@db/x", "not a URL"),
            ("mysql://u:hunter2@db/x", "scheme \"mysql\""),
            ("postgres://", "names no host"),
        ] {
            let err = Settings::load_from(None, env(&[("DATABASE_URL", url)]))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("invalid setting database.url: "), "{err}");
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        Settings::load_from(None, env(&[("DATABASE_URL", "postgresql://u:p@db:5432/x")])).unwrap();
    }

    #[test]
    fn show_lists_every_setting_with_secrets_redacted() {
        let lines = Settings::show(
            None,
            env(&[
                ("DATABASE_URL", "postgres://app:hunter2@db:5432/x"),
                ("WORKOS_API_KEY", "sk_live_secret"),
                ("WORKOS_WEBHOOK_SECRET", "whsec_1"),
                ("WORKOS_SYNC__WORKER__BATCH_SIZE", "7"),
            ]),
        )
        .unwrap();
        let text = lines.join("\n");
        for secret in ["hunter2", "sk_live_secret", "whsec_1"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        // As the environment gives it: text.
        assert!(
            lines.contains(&"worker.batch_size = \"7\"".to_owned()),
            "{text}"
        );
        assert!(
            lines.contains(&"workos.api_base_url = \"https://api.workos.com\"".to_owned()),
            "{text}"
        );
        assert!(
            lines.contains(&"database.url = \"postgres://app:***@db:5432/x\"".to_owned()),
            "{text}"
        );
        assert!(
            lines.contains(&"workos.api_key = \"<redacted>\"".to_owned()),
            "{text}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("archive.types = ")),
            "{text}"
        );
    }

    #[test]
    fn defaults_load() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.receiver.path, "/api/webhooks/workos");
        assert_eq!(s.receiver.tolerance_secs, 180);
        assert_eq!(s.receiver.max_body_bytes, 1_048_576);
        assert_eq!(s.amqp.prefix, "workos");
        assert_eq!(s.amqp.retry_delays_secs, vec![5, 30, 120, 600, 3600]);
        assert!(s.receiver.allowed_ips.is_empty());
        assert_eq!(s.log.format, LogFormat::Json);
        // No secret: the receiver refuses to start.
        let err = s.validate_receiver().unwrap_err().to_string();
        assert!(err.contains("WORKOS_WEBHOOK_SECRET"), "{err}");
    }

    #[test]
    fn env_layers_override() {
        let s = Settings::load_from(
            None,
            env(&[
                ("WORKOS_SYNC__RECEIVER__BIND", "127.0.0.1:9999"),
                ("WORKOS_SYNC__RECEIVER__TOLERANCE_SECS", "60"),
                ("WORKOS_SYNC__RECEIVER__ALLOWED_IPS", "10.0.0.0/8, ::1/128"),
                ("WORKOS_SYNC__AMQP__PREFIX", "t1"),
                ("WORKOS_SYNC__AMQP__RETRY_DELAYS_SECS", "1,2"),
                ("WORKOS_SYNC__WORKER__API_TOKEN", "007"),
                ("AMQP_URL", "amqp://u:p@h:1/v"),
                ("DATABASE_URL", "postgres://x@y/z"),
                ("WORKOS_WEBHOOK_SECRET", "new_secret, old_secret"),
            ]),
        )
        .unwrap();
        assert_eq!(s.receiver.bind, "127.0.0.1:9999");
        assert_eq!(s.receiver.tolerance_secs, 60);
        assert_eq!(s.receiver.allowed_ips.len(), 2);
        assert_eq!(s.amqp.prefix, "t1");
        assert_eq!(s.amqp.retry_delays_secs, vec![1, 2]);
        assert_eq!(s.worker.api_token.expose_secret(), "007");
        assert_eq!(s.amqp.url.len(), 1);
        assert_eq!(s.amqp.url[0].expose_secret(), "amqp://u:p@h:1/v");
        assert_eq!(s.database.url.expose_secret(), "postgres://x@y/z");
        assert_eq!(
            s.webhook_secrets(),
            vec![b"new_secret".to_vec(), b"old_secret".to_vec()]
        );
        s.validate_receiver().unwrap();
    }

    #[test]
    fn zero_batches_and_an_archive_of_no_type_are_refused_by_name() {
        for (key, value, named) in [
            ("WORKOS_SYNC__WORKER__BATCH_SIZE", "0", "worker.batch_size"),
            ("WORKOS_SYNC__WORKER__PARTITIONS", "0", "worker.partitions"),
        ] {
            let err = Settings::load_from(None, env(&[(key, value)])).unwrap_err();
            assert!(err.to_string().contains(named), "{err}");
        }
        let err = Settings::load_from(
            None,
            env(&[
                ("WORKOS_SYNC__ARCHIVE__ENABLED", "true"),
                ("WORKOS_SYNC__ARCHIVE__TYPES", " "),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("archive.types"), "{err}");
        let s = Settings::load_from(
            None,
            env(&[
                ("WORKOS_SYNC__ARCHIVE__ENABLED", "true"),
                (
                    "WORKOS_SYNC__ARCHIVE__TYPES",
                    "authentication.*, session.created",
                ),
            ]),
        )
        .unwrap();
        let f = s.archive.filter().unwrap();
        assert!(f.matches("authentication.sso_succeeded") && f.matches("session.created"));
        assert!(!f.matches("session.revoked") && !f.matches("user.created"));
    }

    #[test]
    fn config_file_layer() {
        let dir = std::env::temp_dir().join(format!("wss-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[receiver]\npath = \"/hooks\"\n[amqp]\nprefix = \"fromfile\"\n",
        )
        .unwrap();
        let s = Settings::load_from(
            Some(&file),
            env(&[("WORKOS_SYNC__AMQP__PREFIX", "fromenv")]),
        )
        .unwrap();
        assert_eq!(s.receiver.path, "/hooks");
        assert_eq!(s.amqp.prefix, "fromenv");
        let missing = Settings::load_from(Some(&dir.join("nope.toml")), env(&[]));
        assert!(missing.is_err());
    }

    #[test]
    fn the_broker_is_a_list_of_nodes_from_any_source() {
        let urls = |s: &Settings| {
            s.amqp
                .url
                .iter()
                .map(|u| u.expose_secret().to_owned())
                .collect::<Vec<_>>()
        };
        let three = "amqp://u:p@a:1/%2f, amqp://u:p@b:2/%2f,amqp://u:p@c:3/%2f";
        let want = vec![
            "amqp://u:p@a:1/%2f",
            "amqp://u:p@b:2/%2f",
            "amqp://u:p@c:3/%2f",
        ];
        let s = Settings::load_from(None, env(&[("AMQP_URL", three)])).unwrap();
        assert_eq!(urls(&s), want);
        let s = Settings::load_from(None, env(&[("WORKOS_SYNC__AMQP__URLS", three)])).unwrap();
        assert_eq!(urls(&s), want);
        let dir = std::env::temp_dir().join(format!("wss-urls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[amqp]\nurls = [\"amqp://u:p@a:1/%2f\", \"amqp://u:p@b:2/%2f\", \"amqp://u:p@c:3/%2f\"]\n",
        )
        .unwrap();
        let s = Settings::load_from(Some(&file), env(&[])).unwrap();
        assert_eq!(urls(&s), want);
        // The operator variable beats the file.
        let s =
            Settings::load_from(Some(&file), env(&[("AMQP_URL", "amqp://u:p@z:9/%2f")])).unwrap();
        assert_eq!(urls(&s), vec!["amqp://u:p@z:9/%2f"]);
        let _ = std::fs::remove_dir_all(&dir);
        // The default is the one local node.
        assert_eq!(
            Settings::load_from(None, env(&[])).unwrap().amqp.url.len(),
            1
        );
        let e = Settings::load_from(None, env(&[("WORKOS_SYNC__AMQP__URL", " , ")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("amqp.url"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        for (var, value, named) in [
            (
                "WORKOS_SYNC__RECEIVER__TOLERANCE_SECS",
                "soon",
                "tolerance_secs",
            ),
            ("WORKOS_SYNC__RECEIVER__ALLOWED_IPS", "nope", "nope"),
            ("WORKOS_SYNC__AMQP__PREFIX", "a b", "amqp.prefix"),
            (
                "WORKOS_SYNC__WORKER__PARK_AFTER_SECS",
                "0",
                "worker.park_after_secs",
            ),
            ("WORKOS_SYNC__AMQP__FRAME_MAX", "1024", "amqp.frame_max"),
        ] {
            let e = Settings::load_from(None, env(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(named), "{var}={value}: {e}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = Settings::load_from(
            None,
            env(&[
                ("WORKOS_WEBHOOK_SECRET", "whsec_supersecret"),
                ("WORKOS_API_KEY", "sk_test_supersecret"),
                ("AMQP_URL", "amqp://user:pw_supersecret@h/v"),
            ]),
        )
        .unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("supersecret"), "{dbg}");
    }
}

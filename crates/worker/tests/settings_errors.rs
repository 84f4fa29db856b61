//! The worker refuses bad settings before anything starts: one line naming the key (no
//! error chain, no backtrace even with RUST_BACKTRACE set), exit 2; a misspelt key and
//! a malformed database URL (which would otherwise be retried forever) alike.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::process::Command;

fn worker(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_workos-sync-worker"))
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_settings_stop_the_worker_with_one_line() {
    let (code, err) = worker(&[("WORKOS_SYNC__WROKER__PARTITIONS", "4")]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err.trim(),
        "workos-sync-worker: unknown setting wroker.partitions (from \
         WORKOS_SYNC__WROKER__PARTITIONS); did you mean worker.partitions?"
    );
    let (code, err) = worker(&[("DATABASE_URL", "mysql://app:hunter2@db/x")]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("invalid setting database.url: scheme \"mysql\" is not postgres"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let (code, err) = worker(&[("WORKOS_SYNC__LOG__FORMAT", "yaml")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("\"yaml\" is not one of: json, text"), "{err}");
    assert!(err.contains("log.format"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

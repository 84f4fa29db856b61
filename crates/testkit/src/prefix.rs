//! A test's queue prefix that cleans up after itself: dropping it (at the end of the
//! test, or while a failed test unwinds) deletes the queues and exchanges of the
//! default topology under that prefix, like `TestDb` drops its database. Deleting what
//! is already gone is not an error in RabbitMQ, so tests that delete their topology
//! themselves are unaffected.
//!
//! Failure model: cleanup is best effort; a broker that cannot be reached leaves the
//! names for `scripts/services.sh` to sweep (`wst-*`), with one line on stderr.

use std::{fmt, ops::Deref};

/// A fresh `wst-p<pid>-<8 hex>` prefix, deleted on drop (see the module header).
pub struct TestPrefix {
    name: String,
    armed: bool,
}

impl TestPrefix {
    pub(crate) fn new(name: String) -> Self {
        Self { name, armed: true }
    }

    /// The prefix as a plain string, without the cleanup (for a helper whose broker
    /// objects outlive the test's scope and are deleted by the test itself).
    pub fn keep(mut self) -> String {
        self.armed = false;
        std::mem::take(&mut self.name)
    }
}

impl Deref for TestPrefix {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl AsRef<str> for TestPrefix {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl AsRef<std::ffi::OsStr> for TestPrefix {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.name.as_ref()
    }
}

impl fmt::Display for TestPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for TestPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let name = self.name.clone();
        // `Drop` cannot await: a thread with a runtime of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let topology = crate::test_topology(&name)?;
                crate::delete_topology(&topology).await
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!(
                "testkit: could not delete the queues of prefix {}",
                self.name
            );
        }
    }
}

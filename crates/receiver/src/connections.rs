//! The connection cap, answered: each connection is counted when it is accepted
//! (`HttpServer::on_connect`) and uncounted when it closes (its [`Slot`] is dropped with
//! the connection's data). One accepted past `receiver.max_connections` × workers is
//! still served, but its webhook requests get a prompt 503 with `Retry-After: 1` and the
//! connection is closed after the answer (`IngressError::TooManyConnections`), body
//! unread: a sender past the cap learns at once to come back, instead of waiting in the
//! kernel's accept queue until it gives up (actix-web's own cap stops accepting). actix's
//! cap is set above ours ([`accept_limit`]: half as many again) so such connections are
//! accepted; past that they wait in the backlog as before.
//!
//! Failure model: none; counting is two atomic operations per connection.

use std::{
    any::Any,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use actix_web::{HttpRequest, dev::Extensions};

/// Open connections of the whole receiver (every HTTP worker).
#[derive(Clone)]
pub struct Counter {
    open: Arc<AtomicUsize>,
    cap: usize,
}

/// One connection's place in the count, held in the connection's data.
pub struct Slot {
    open: Arc<AtomicUsize>,
    over: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let left = self.open.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        metrics::gauge!(workos_sync_core::metric::RECEIVER_CONNECTIONS).set(left as f64);
    }
}

impl Counter {
    /// `per_worker` connections served per HTTP worker, `workers` of them.
    pub fn new(per_worker: usize, workers: usize) -> Self {
        Self {
            open: Arc::new(AtomicUsize::new(0)),
            cap: per_worker.saturating_mul(workers.max(1)),
        }
    }

    /// Counts a newly accepted connection (`on_connect`).
    pub fn connected(&self, _io: &dyn Any, data: &mut Extensions) {
        let n = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!(workos_sync_core::metric::RECEIVER_CONNECTIONS).set(n as f64);
        data.insert(Slot {
            open: self.open.clone(),
            over: n > self.cap,
        });
    }
}

/// True when `req` came on a connection accepted past the cap.
pub fn over_cap(req: &HttpRequest) -> bool {
    req.conn_data::<Slot>().is_some_and(|s| s.over)
}

/// actix-web's own per-worker accept limit: ours plus half as many again (at least 16),
/// so a connection past our cap is accepted and answered. Its body is never read, but
/// the HTTP stack reads what arrived with the head: measured with
/// `scripts/bench-flood.sh 400 3` (400 connections of 1 MiB bodies, 2 workers), peak RSS
/// 38.8 MiB with no headroom, 56.6 MiB with as many again (all 400 accepted), 52.9 MiB
/// with half (384 accepted): within the deployment's 64 MiB limit with its one worker.
pub fn accept_limit(per_worker: usize) -> usize {
    per_worker.saturating_add((per_worker / 2).max(16))
}

//! What each piece the receiver adds to a bare relay costs, in nanoseconds of one core
//! per request, measured in this process on a realistic WorkOS body (the ingress
//! benchmark's): the signature (header check and HMAC), the envelope read, the message
//! properties, the metrics (looked up per request, and as handles kept), the JSON answer,
//! and the per-request log line in production's JSON format into /dev/null (a write per
//! line, as to a pipe), at info and when filtered out.
//!
//! Each figure is the median of 5 rounds of `--iterations`; the baseline in the same
//! run is an empty round (the loop and the timer). `scripts/bench-ingress.sh` measures
//! the whole receiver against the bare relay; this says where the difference goes.

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

use std::{hint::black_box, time::Instant};

use clap::Parser;
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt};
use workos_sync_core::{Envelope, metric, now_ms, signature};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200_000)]
    iterations: u32,
}

const SECRET: &[u8] = b"whsec_bench_secret";

/// Median ns per iteration of `f` over 5 rounds.
fn measure(iterations: u32, mut f: impl FnMut(u32)) -> f64 {
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for i in 0..iterations {
                f(black_box(i));
            }
            t.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

fn log_line(id: &str, ty: &str, duration_ms: f64) {
    tracing::info!(
        event.id = %id,
        event.r#type = %ty,
        outcome = "accepted",
        duration_ms,
        "webhook accepted"
    );
}

fn subscriber(filter: &str) -> anyhow::Result<impl tracing::Subscriber + Send + Sync> {
    let devnull = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    Ok(tracing_subscriber::registry()
        .with(EnvFilter::try_new(filter)?)
        .with(
            fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_writer(std::sync::Mutex::new(devnull)),
        ))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let n = args.iterations;
    let body = workos_sync_core::event::sample_user_event(
        "event_01JBENCH0000000000000000",
        "user.updated",
        "user_01JBENCH0000000000000000",
        "2026-01-01T00:00:00.000Z",
        "2026-01-02T00:00:00.000Z",
    );
    let body = body.as_bytes();
    let secrets = signature::Secrets::new(&[SECRET]);
    let header = signature::signature_header(SECRET, now_ms(), body);
    let tolerance = std::time::Duration::from_secs(180);
    let _ = workos_sync_core::metrics_setup::prometheus();
    let env = Envelope::decode(body)?;

    let mut rows: Vec<(&str, f64)> = Vec::new();
    let empty = measure(n, |i| {
        black_box(i);
    });
    rows.push((
        "signature: header check + HMAC-SHA256 of the body",
        measure(n, |_| {
            let parsed = signature::precheck(Some(&header), &secrets, now_ms(), tolerance);
            if let Ok(p) = parsed {
                black_box(signature::verify_body(&p, body, &secrets).is_ok());
            }
        }),
    ));
    rows.push((
        "envelope: id and type read from the body",
        measure(n, |_| {
            black_box(Envelope::decode(body).is_ok());
        }),
    ));
    rows.push((
        "message properties (also in the relay)",
        measure(n, |_| {
            black_box(workos_sync_queue::event_properties(
                &env.id,
                &env.event_type,
                1,
                false,
            ));
        }),
    ));
    rows.push((
        "metrics, looked up per request: counter + histogram",
        measure(n, |i| {
            metrics::counter!(metric::WEBHOOKS_TOTAL, "outcome" => "accepted").increment(1);
            metrics::histogram!(metric::WEBHOOK_DURATION_SECONDS).record(f64::from(i % 7) * 1e-3);
        }),
    ));
    let accepted = metrics::counter!(metric::WEBHOOKS_TOTAL, "outcome" => "accepted");
    let duration = metrics::histogram!(metric::WEBHOOK_DURATION_SECONDS);
    rows.push((
        "metrics, handles kept: counter + histogram",
        measure(n, |i| {
            accepted.increment(1);
            duration.record(f64::from(i % 7) * 1e-3);
        }),
    ));
    rows.push((
        "JSON answer built with json! and serialised",
        measure(n, |_| {
            black_box(
                serde_json::to_vec(&serde_json::json!({"status": "accepted", "id": env.id})).ok(),
            );
        }),
    ));
    rows.push((
        "JSON answer written from a template",
        measure(n, |_| {
            black_box(workos_sync_receiver::answer::accepted_body(&env.id));
        }),
    ));
    let info = subscriber("info")?;
    let at_info = tracing::subscriber::with_default(info, || {
        measure(n, |i| log_line(&env.id, &env.event_type, f64::from(i % 7)))
    });
    rows.push(("log line at info, JSON, into /dev/null", at_info));
    let warn = subscriber("warn")?;
    let filtered = tracing::subscriber::with_default(warn, || {
        measure(n, |i| log_line(&env.id, &env.event_type, f64::from(i % 7)))
    });
    rows.push(("log line filtered out (debug level)", filtered));

    println!(
        "ingress pieces: ns of one core per request, median of 5 rounds of {n} (body {} bytes)",
        body.len()
    );
    println!("  {:>8.0} ns  baseline: an empty iteration", empty);
    for (name, ns) in rows {
        println!("  {:>8.0} ns  {name}", (ns - empty).max(0.0));
    }
    Ok(())
}

//! `check::check` against the real broker: nothing declared (everything missing), the
//! topology as declared (no finding, depths read), and an events queue made by someone
//! else with other arguments (named, and left as it was).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::time::Duration;

use lapin::{options::QueueDeclareOptions, types::FieldTable};
use workos_sync_queue::check::{self, Finding};
use workos_sync_testkit::{amqp_url, connect, test_topology, unique_prefix};

#[tokio::test]
async fn findings_name_what_differs() {
    let prefix = unique_prefix();
    let topology = test_topology(&prefix).unwrap();
    let conn = check::connect(&amqp_url(), Duration::from_secs(5))
        .await
        .unwrap();

    // Nothing declared: every exchange and queue missing, and the check created none.
    let report = check::check(&topology, &conn).await.unwrap();
    assert!(report.queues.is_empty());
    assert!(
        report
            .findings
            .contains(&Finding::MissingQueue(topology.events_queue()))
    );
    assert!(
        report
            .findings
            .contains(&Finding::MissingExchange(topology.events_exchange()))
    );
    let again = check::check(&topology, &conn).await.unwrap();
    assert_eq!(
        again.findings, report.findings,
        "the check declared something"
    );

    // Someone else's events queue: classic, no arguments.
    let other = connect().await.unwrap();
    let ch = other.create_channel().await.unwrap();
    ch.queue_declare(
        topology.events_queue().as_str().into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let report = check::check(&topology, &conn).await.unwrap();
    assert!(
        report.findings.iter().any(|f| matches!(f,
            Finding::QueueDiffers { queue, .. } if *queue == topology.events_queue())),
        "{:?}",
        report.findings
    );
    ch.queue_delete(topology.events_queue().as_str().into(), Default::default())
        .await
        .unwrap();

    // As declared: no finding, every queue's depth read.
    topology.declare(&other).await.unwrap();
    let report = check::check(&topology, &conn).await.unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.queues.len(), topology.plan().queues.len());
    let _ = conn.close(200, "done".into()).await;
    let _ = other.close(200, "done".into()).await;
    drop(prefix);
}

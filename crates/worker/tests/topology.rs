//! Declaring the topology over queues that already exist (the shared broker, a queue
//! prefix of its own): a queue made before `amqp.quorum_group_size` was asked for (or
//! with another size) is kept, and every other difference is still refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::time::Duration;

use workos_sync_queue::{Broker, BrokerConfig};
use workos_sync_testkit::{
    connected_broker, publish_event, queue_len, test_settings, unique_prefix, user_event,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_made_with_another_group_size_are_kept_and_other_differences_refused() {
    let prefix = unique_prefix();
    let broker_with = |extra: &[(&str, &str)]| {
        let settings = test_settings(&prefix, extra).unwrap();
        Broker::start(BrokerConfig::from_settings(&settings.amqp, "topology-test"))
    };
    for (size, then) in [("0", "3"), ("2", "3"), ("3", "0")] {
        // What an earlier installation declared.
        let old =
            test_settings(&prefix, &[("WORKOS_SYNC__AMQP__QUORUM_GROUP_SIZE", size)]).unwrap();
        connected_broker(&old.amqp, "before")
            .await
            .unwrap()
            .close()
            .await;
        // Declaring with another size connects, and publishing works.
        let now = broker_with(&[("WORKOS_SYNC__AMQP__QUORUM_GROUP_SIZE", then)]);
        assert!(
            now.wait_connected(Duration::from_secs(15)).await,
            "group size {size} then {then}: not connected"
        );
        let body = user_event(
            "event_topology_1",
            "user.created",
            "user_t",
            "2026-01-01T00:00:00.000Z",
        );
        publish_event(&now, "event_topology_1", "user.created", body.as_bytes())
            .await
            .unwrap();
        assert_eq!(queue_len(&now.topology().events_queue()).await.unwrap(), 1);
        workos_sync_testkit::delete_topology(now.topology())
            .await
            .unwrap();
        now.close().await;
    }
    // Any other difference still stops the connection: the queue is not ours to change.
    connected_broker(&test_settings(&prefix, &[]).unwrap().amqp, "before")
        .await
        .unwrap()
        .close()
        .await;
    let other = broker_with(&[("WORKOS_SYNC__AMQP__DELIVERY_LIMIT", "11")]);
    assert!(
        !other.wait_connected(Duration::from_secs(3)).await,
        "a different delivery limit was accepted"
    );
    other.close().await;
}

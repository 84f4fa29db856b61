//! One file per command family; each runs its command and renders its output. What
//! several share lives here: connecting to the broker, the API client and the store.

use std::time::Duration;

use workos_sync_core::Settings;
use workos_sync_queue::{Broker, BrokerConfig};

pub mod archive;
pub mod backfill;
pub mod config;
pub mod debug;
pub mod dlq;
pub mod doctor;
pub mod doctor_user;
pub mod event_types;
pub mod migrate;
pub mod probe;
pub mod prune;
pub mod reconcile;
pub mod send_test_event;
pub mod status;
pub mod sync_org;
pub mod sync_user;
pub mod tombstones;
pub mod verify;
pub mod webhooks;

pub(crate) fn api_and_store(
    settings: &Settings,
) -> anyhow::Result<(workos_sync_workos_api::Client, workos_sync_store::Store)> {
    let api = workos_sync_workos_api::Client::new(
        workos_sync_workos_api::ApiConfig::from_settings(&settings.workos),
    )?;
    anyhow::ensure!(
        api.has_key(),
        "no WorkOS API key configured; set WORKOS_API_KEY"
    );
    let store =
        workos_sync_store::Store::from_settings(&settings.database)?.with_sync(&settings.sync);
    Ok((api, store))
}

pub(crate) async fn connect(settings: &Settings) -> anyhow::Result<Broker> {
    let broker = Broker::start(BrokerConfig::from_settings(
        &settings.amqp,
        "workos-sync-cli",
    ));
    anyhow::ensure!(
        broker.wait_connected(Duration::from_secs(10)).await,
        "cannot reach RabbitMQ (check AMQP_URL)"
    );
    Ok(broker)
}

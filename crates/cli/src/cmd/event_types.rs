//! `workos-sync event-types [--all] [--json]`: the WorkOS event types to subscribe the
//! webhook endpoint to, read from the same declarations the worker applies by (each
//! enabled entity's `event_types`, `sync.entities`), one per line (or a JSON array), so
//! the dashboard's event list is copied from the code, never from a doc. `--all` lists
//! every entity's, enabled or not. Needs no service.

use std::io::Write;

use workos_sync_core::{EntitySet, Settings};

pub fn run(
    settings: &Settings,
    all: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let entities = if all {
        EntitySet::ALL
    } else {
        settings.sync.entity_set()
    };
    let types = entities.subscribed_event_types();
    if json {
        writeln!(out, "{}", serde_json::to_string(&types)?)?;
    } else {
        for t in types {
            writeln!(out, "{t}")?;
        }
    }
    Ok(())
}

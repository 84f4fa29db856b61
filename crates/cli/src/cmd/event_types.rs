//! `workos-sync event-types [--all] [--json]`: the WorkOS event types to subscribe the
//! webhook endpoint to, read from the same declarations the worker applies by (each
//! enabled entity's `event_types`, `sync.entities`), one per line (or a JSON array), so
//! the dashboard's event list is copied from the code, never from a doc. `--all` lists
//! every entity's, enabled or not. Needs no service.

use std::io::Write;

use workos_sync_core::{Entity, Settings};

pub fn run(
    settings: &Settings,
    all: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let enabled = settings.sync.entity_set();
    let types: Vec<&str> = Entity::ALL
        .into_iter()
        .filter(|e| all || enabled.contains(*e))
        .flat_map(|e| e.event_types().iter().copied())
        .collect();
    if json {
        writeln!(out, "{}", serde_json::to_string(&types)?)?;
    } else {
        for t in types {
            writeln!(out, "{t}")?;
        }
    }
    Ok(())
}

//! A deletion that named only its key ([`workos_sync_core::Record::key_only`]): a
//! membership's user and organization, a domain's organization, a role's or
//! permission's slug and scope, read from the stored row with that id before the batch
//! takes its locks (they decide the key, which scopes it locks and which children go
//! with it). These never change for one id, so reading them outside the locks is safe.
//! A membership or domain the table does not hold keeps empty parents (its delete
//! removes nothing and tombstones the id); a role or permission whose slug cannot be
//! found stays [`workos_sync_core::Record::key_unknown`] and is recorded as ignored.
//!
//! Failure model: a failed read is a [`StoreError`] like any other of the batch.

use std::{borrow::Cow, collections::HashMap};

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use workos_sync_core::{Event, EventKind, Record};

use crate::{
    StoreError,
    schema::{organization_domains, organization_memberships, permissions, roles},
};

fn needs_parents(ev: &Event) -> bool {
    match &ev.kind {
        EventKind::Delete(Record::Membership(m)) => {
            m.user_id.is_empty() || m.organization_id.is_empty()
        }
        EventKind::Delete(Record::Domain(d)) => d.organization_id.is_empty(),
        EventKind::Delete(r @ (Record::Role(_) | Record::Permission(_))) => r.key_unknown(),
        _ => false,
    }
}

/// `events` with the missing parents of key-only deletions filled from the tables
/// (borrowed unchanged when there are none: no query on the usual path).
pub(crate) async fn fill<'e>(
    conn: &mut AsyncPgConnection,
    events: &'e [Event],
) -> Result<Cow<'e, [Event]>, StoreError> {
    if !events.iter().any(needs_parents) {
        return Ok(Cow::Borrowed(events));
    }
    let ids: Vec<String> = events
        .iter()
        .filter(|e| needs_parents(e))
        .filter_map(|e| match e.record() {
            Some(Record::Role(r)) => r.id.clone(),
            Some(Record::Permission(p)) => p.id.clone(),
            Some(r) => Some(r.key()),
            None => None,
        })
        .collect();
    let members: HashMap<String, (String, String)> = organization_memberships::table
        .filter(organization_memberships::id.eq_any(&ids))
        .select((
            organization_memberships::id,
            organization_memberships::user_id,
            organization_memberships::organization_id,
        ))
        .load::<(String, String, String)>(conn)
        .await?
        .into_iter()
        .map(|(id, u, o)| (id, (u, o)))
        .collect();
    let domains: HashMap<String, String> = organization_domains::table
        .filter(organization_domains::id.eq_any(&ids))
        .select((
            organization_domains::id,
            organization_domains::organization_id,
        ))
        .load::<(String, String)>(conn)
        .await?
        .into_iter()
        .collect();
    let role_rows: HashMap<String, (String, Option<String>)> = roles::table
        .filter(roles::id.eq_any(&ids))
        .select((
            roles::id.assume_not_null(),
            roles::slug,
            roles::organization_id,
        ))
        .load::<(String, String, Option<String>)>(conn)
        .await?
        .into_iter()
        .map(|(id, slug, org)| (id, (slug, org)))
        .collect();
    let permission_slugs: HashMap<String, String> = permissions::table
        .filter(permissions::id.eq_any(&ids))
        .select((permissions::id.assume_not_null(), permissions::slug))
        .load::<(String, String)>(conn)
        .await?
        .into_iter()
        .collect();
    let mut out = events.to_vec();
    for ev in &mut out {
        match &mut ev.kind {
            EventKind::Delete(Record::Membership(m)) => {
                if let Some((u, o)) = members.get(&m.id) {
                    if m.user_id.is_empty() {
                        m.user_id.clone_from(u);
                    }
                    if m.organization_id.is_empty() {
                        m.organization_id.clone_from(o);
                    }
                }
            }
            EventKind::Delete(Record::Domain(d)) if d.organization_id.is_empty() => {
                if let Some(o) = domains.get(&d.id) {
                    d.organization_id.clone_from(o);
                }
            }
            EventKind::Delete(Record::Role(r)) if r.key_unknown() => {
                if let Some((slug, org)) = r.id.as_ref().and_then(|id| role_rows.get(id)) {
                    r.slug.clone_from(slug);
                    r.organization_id.clone_from(org);
                }
            }
            EventKind::Delete(Record::Permission(p)) if p.slug.is_empty() => {
                if let Some(slug) = p.id.as_ref().and_then(|id| permission_slugs.get(id)) {
                    p.slug.clone_from(slug);
                }
            }
            _ => {}
        }
    }
    Ok(Cow::Owned(out))
}

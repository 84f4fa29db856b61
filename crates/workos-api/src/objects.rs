//! Any entity's objects by its declared list path: one object by id
//! (`GET <list_path>/{id}`), and for an entity whose list is plain
//! (`Declaration::plain_list`: invitations, connections) a page of the whole list,
//! oldest first, each object decoded as an event's `data` is
//! ([`Record::from_object`]), so a secret field WorkOS returns (an invitation's `token`)
//! is dropped before anything else sees it.
//!
//! Failure model: as the rest of the client; an object that does not decode is
//! [`ApiError::BadResponse`] naming the entity, never its contents.

use std::time::Instant;

use serde_json::value::RawValue;
use workos_sync_core::{Entity, Record};

use crate::{ApiError, Client, Page, list_path, organizations::paging};

impl Client {
    /// One object of `entity` by id, decoded as `T`; WorkOS's own `entity_not_found`
    /// for that id is [`ApiError::NotFound`].
    pub(crate) async fn get_object<T: workos_sync_core::record::Object>(
        &self,
        entity: Entity,
        id: &str,
        deadline: Option<Instant>,
    ) -> Result<T, ApiError> {
        workos_sync_core::check_object_id(id)?;
        let body = self
            .get(
                &format!("{}/{id}", list_path(entity)),
                &[],
                Some(id),
                deadline,
            )
            .await?;
        crate::decode_body(&body.0)
    }

    /// One object of `entity` by id, as a [`Record`].
    pub async fn get_record(&self, entity: Entity, id: &str) -> Result<Record, ApiError> {
        let raw: Box<RawValue> = self.get_object(entity, id, None).await?;
        decode(entity, &raw)
    }

    /// One page of `entity`'s plain list, oldest first.
    pub async fn list_records(
        &self,
        entity: Entity,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<Record>, ApiError> {
        let page: Page<Box<RawValue>> = self
            .get_page(list_path(entity), &paging(after, limit))
            .await?;
        Ok(Page {
            data: page
                .data
                .iter()
                .map(|raw| decode(entity, raw))
                .collect::<Result<_, _>>()?,
            after: page.after,
        })
    }
}

fn decode(entity: Entity, raw: &RawValue) -> Result<Record, ApiError> {
    Record::from_object(entity, raw.get())
        .map_err(|e| ApiError::BadResponse(format!("a {entity} object did not decode: {e}")))
}

//! The users table's rows as one typed array per column, bound in Postgres's binary
//! format and expanded by `unnest` (the hot path: measured against a JSON array of rows,
//! `json_to_recordset` cost Postgres ~11 µs more per event in the worker benchmark, its
//! text parsing of every field and timestamp). Which array a column binds is decided by
//! its name in the one column list (`tables::TABLES`), checked by a test.
//!
//! Failure model: a column name this file does not know is a diesel error at bind time
//! (a test keeps that from shipping).

use chrono::{DateTime, Utc};
use diesel::{
    QueryResult,
    pg::Pg,
    query_builder::AstPass,
    sql_types::{Array, Bool, Jsonb, Nullable, Text, Timestamptz},
};

use crate::tables::UserRow;

#[derive(Default)]
pub(crate) struct UserColumns<'a> {
    id: Vec<&'a str>,
    email: Vec<&'a str>,
    name: Vec<Option<String>>,
    usertag: Vec<String>,
    avatar_url: Vec<Option<&'a str>>,
    first_name: Vec<Option<&'a str>>,
    last_name: Vec<Option<&'a str>>,
    email_verified: Vec<bool>,
    external_id: Vec<Option<&'a str>>,
    metadata: Vec<serde_json::Value>,
    locale: Vec<Option<&'a str>>,
    last_sign_in_at: Vec<Option<DateTime<Utc>>>,
    workos_created_at: Vec<DateTime<Utc>>,
    workos_updated_at: Vec<DateTime<Utc>>,
    src: Vec<Option<&'a str>>,
}

impl<'a> UserColumns<'a> {
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    pub fn push(&mut self, r: UserRow<'a>) {
        self.id.push(r.id);
        self.email.push(r.email);
        self.name.push(r.name);
        self.usertag.push(r.usertag);
        self.avatar_url.push(r.avatar_url);
        self.first_name.push(r.first_name);
        self.last_name.push(r.last_name);
        self.email_verified.push(r.email_verified);
        self.external_id.push(r.external_id);
        self.metadata
            .push(serde_json::to_value(&*r.metadata).unwrap_or_else(|_| serde_json::json!({})));
        self.locale.push(r.locale);
        self.last_sign_in_at.push(r.last_sign_in_at);
        self.workos_created_at.push(r.workos_created_at);
        self.workos_updated_at.push(r.workos_updated_at);
        self.src.push(r.src);
    }

    /// Binds the array of `column` (`src`: the source event ids).
    pub fn bind<'b>(&'b self, column: &str, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match column {
            "id" => out.push_bind_param::<Array<Text>, _>(&self.id),
            "email" => out.push_bind_param::<Array<Text>, _>(&self.email),
            "name" => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.name),
            "usertag" => out.push_bind_param::<Array<Text>, _>(&self.usertag),
            "avatar_url" => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.avatar_url),
            "first_name" => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.first_name),
            "last_name" => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.last_name),
            "email_verified" => out.push_bind_param::<Array<Bool>, _>(&self.email_verified),
            "external_id" => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.external_id),
            "metadata" => out.push_bind_param::<Array<Jsonb>, _>(&self.metadata),
            "locale" => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.locale),
            "last_sign_in_at" => {
                out.push_bind_param::<Array<Nullable<Timestamptz>>, _>(&self.last_sign_in_at)
            }
            "workos_created_at" => {
                out.push_bind_param::<Array<Timestamptz>, _>(&self.workos_created_at)
            }
            "workos_updated_at" => {
                out.push_bind_param::<Array<Timestamptz>, _>(&self.workos_updated_at)
            }
            "src" => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.src),
            other => Err(diesel::result::Error::QueryBuilderError(
                format!("users column {other} has no array in user_columns").into(),
            )),
        }
    }

    /// True when [`UserColumns::bind`] knows `column`.
    #[cfg(test)]
    pub fn knows(column: &str) -> bool {
        matches!(
            column,
            "id" | "email"
                | "name"
                | "usertag"
                | "avatar_url"
                | "first_name"
                | "last_name"
                | "email_verified"
                | "external_id"
                | "metadata"
                | "locale"
                | "last_sign_in_at"
                | "workos_created_at"
                | "workos_updated_at"
                | "src"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workos_sync_core::Entity;

    /// Every users column of the one list has its array here (and nothing else does).
    #[test]
    fn every_users_column_has_an_array() {
        let cols = crate::tables::table(Entity::Users).columns;
        for c in cols {
            assert!(UserColumns::knows(c.name), "{}", c.name);
        }
        assert!(UserColumns::knows("src"));
        assert!(!UserColumns::knows("bio"));
        // 14 columns + src, as many as the struct's vectors.
        assert_eq!(cols.len() + 1, 15);
    }
}

//! The users layout resolved from a catalog: names as ours, as configured, or in
//! camelCase; types checked; what `migrate` would add (unit cases, no database).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::collections::BTreeMap;

use workos_sync_core::{Entity, declare::ColumnType, settings::DeleteMode};
use workos_sync_store::layout::*;

/// Where our column `name` is in [`user_columns`] (and so in what `resolve` returns).
fn pos(name: &str) -> usize {
    user_columns().iter().position(|c| c.name == name).unwrap()
}

fn cols(names: &[(&str, &str)]) -> Vec<CatalogColumn> {
    names
        .iter()
        .map(|(n, t)| CatalogColumn {
            name: (*n).into(),
            data_type: (*t).into(),
            nullable: true,
            has_default: false,
        })
        .collect()
}

/// The WorkOS sync guide's table (Prisma, camelCase).
fn guide() -> Vec<CatalogColumn> {
    cols(&[
        ("id", "text"),
        ("email", "text"),
        ("name", "text"),
        ("usertag", "text"),
        ("avatarUrl", "text"),
        ("bio", "text"),
        ("details", "jsonb"),
        ("createdAt", "timestamp without time zone"),
        ("updatedAt", "timestamp without time zone"),
    ])
}

#[test]
fn the_guides_camel_case_names_are_recognised() {
    let found = resolve(&guide(), &BTreeMap::new()).unwrap();
    let at = |n: &str| found[pos(n)].clone();
    assert_eq!(at("avatar_url"), Found::At("avatarUrl".into()));
    assert_eq!(at("created_at"), Found::At("createdAt".into()));
    assert_eq!(at("updated_at"), Found::At("updatedAt".into()));
    assert_eq!(at("usertag"), Found::At("usertag".into()));
    assert_eq!(at("first_name"), Found::Missing("first_name".into()));
    assert_eq!(at("deleted_at"), Found::Missing("deleted_at".into()));
    // Not migrated yet: the write path refuses, naming the first missing column.
    assert_eq!(
        Layout::from_catalog(&guide(), &BTreeMap::new(), DeleteModes::default()).unwrap_err(),
        LayoutError::NotMigrated("first_name")
    );
}

#[test]
fn a_mapping_wins_and_must_name_a_real_column() {
    let mut table = guide();
    table.extend(cols(&[("picture", "character varying")]));
    let mapping = BTreeMap::from([("avatar_url".to_owned(), "picture".to_owned())]);
    let found = resolve(&table, &mapping).unwrap();
    assert_eq!(found[pos("avatar_url")], Found::At("picture".into()));
    // A column sync can add is added under the configured name; one it cannot
    // (the id, the email) must exist.
    let later = BTreeMap::from([("avatar_url".to_owned(), "photo".to_owned())]);
    assert_eq!(
        resolve(&table, &later).unwrap()[pos("avatar_url")],
        Found::Missing("photo".into())
    );
    let bad = BTreeMap::from([("id".to_owned(), "userId".to_owned())]);
    assert!(matches!(
        resolve(&table, &bad),
        Err(LayoutError::MappedMissing { .. })
    ));
    let unknown = BTreeMap::from([("avatar".to_owned(), "picture".to_owned())]);
    let Err(LayoutError::UnknownColumn { name, known }) = resolve(&table, &unknown) else {
        panic!("an unknown column is refused")
    };
    assert_eq!(name, "avatar");
    assert!(known.contains("avatar_url, first_name"), "{known}");
}

#[test]
fn two_of_ours_never_share_a_column_and_a_configured_name_is_where_one_is_added() {
    let shared = BTreeMap::from([("workos_created_at".to_owned(), "createdAt".to_owned())]);
    assert!(matches!(
        resolve(&guide(), &shared),
        Err(LayoutError::SharedColumn { .. })
    ));
    let named = BTreeMap::from([("deleted_at".to_owned(), "removedAt".to_owned())]);
    let found = resolve(&guide(), &named).unwrap();
    assert_eq!(found[pos("deleted_at")], Found::Missing("removedAt".into()));
}

#[test]
fn incompatible_types_are_refused() {
    let mut table = guide();
    table[0].data_type = "uuid".into();
    assert!(matches!(
        resolve(&table, &BTreeMap::new()),
        Err(LayoutError::WrongType { logical: "id", .. })
    ));
}

#[test]
fn our_own_table_resolves_to_our_names() {
    let table: Vec<CatalogColumn> = user_columns()
        .iter()
        .map(|c| CatalogColumn {
            name: c.name.into(),
            data_type: match c.ty {
                ColumnType::Text => "text",
                ColumnType::Bool => "boolean",
                ColumnType::Json => "jsonb",
                ColumnType::Time => "timestamp with time zone",
                ColumnType::TextList => "ARRAY",
            }
            .into(),
            nullable: c.name != "email",
            has_default: false,
        })
        .collect();
    let soft = DeleteModes::default().with(Entity::Users, DeleteMode::Soft);
    let l = Layout::from_catalog(&table, &BTreeMap::new(), soft).unwrap();
    assert_eq!(l.q("avatar_url"), "\"avatar_url\"");
    assert!(!l.email_nullable);
    // Without deleted_at, soft deletes cannot be made.
    let without: Vec<CatalogColumn> = table
        .into_iter()
        .filter(|c| c.name != "deleted_at")
        .collect();
    assert_eq!(
        Layout::from_catalog(&without, &BTreeMap::new(), soft).unwrap_err(),
        LayoutError::NoDeletedAt {
            setting: "user_delete"
        }
    );
}

#[test]
fn camel_case() {
    assert_eq!(camel("avatar_url"), "avatarUrl");
    assert_eq!(camel("last_sign_in_at"), "lastSignInAt");
    assert_eq!(camel("id"), "id");
    assert_eq!(quote("a\"b"), "\"a\"\"b\"");
}

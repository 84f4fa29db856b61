// @generated automatically by Diesel CLI.

diesel::table! {
    processed_events (event_id) {
        event_id -> Text,
        event_type -> Text,
        user_id -> Nullable<Text>,
        outcome -> Text,
        processed_at -> Timestamptz,
    }
}

diesel::table! {
    sync_cursors (name) {
        name -> Text,
        cursor -> Nullable<Text>,
        last_run_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    user_tombstones (user_id) {
        user_id -> Text,
        deleted_at -> Timestamptz,
        event_id -> Text,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        name -> Nullable<Text>,
        usertag -> Text,
        avatar_url -> Nullable<Text>,
        bio -> Nullable<Text>,
        details -> Nullable<Jsonb>,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        email_verified -> Bool,
        external_id -> Nullable<Text>,
        metadata -> Jsonb,
        locale -> Nullable<Text>,
        last_sign_in_at -> Nullable<Timestamptz>,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    processed_events,
    sync_cursors,
    user_tombstones,
    users,
);

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
    tombstones (entity, id) {
        entity -> Text,
        id -> Text,
        deleted_at -> Timestamptz,
        event_id -> Text,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    organizations (id) {
        id -> Text,
        name -> Text,
        external_id -> Nullable<Text>,
        metadata -> Jsonb,
        stripe_customer_id -> Nullable<Text>,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    organization_domains (id) {
        id -> Text,
        organization_id -> Text,
        domain -> Text,
        state -> Nullable<Text>,
        verification_strategy -> Nullable<Text>,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    organization_memberships (id) {
        id -> Text,
        user_id -> Text,
        organization_id -> Text,
        status -> Text,
        role_slug -> Nullable<Text>,
        role_slugs -> Array<Nullable<Text>>,
        custom_attributes -> Jsonb,
        directory_managed -> Bool,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    roles (key) {
        key -> Text,
        id -> Nullable<Text>,
        slug -> Text,
        organization_id -> Nullable<Text>,
        name -> Nullable<Text>,
        description -> Nullable<Text>,
        #[sql_name = "type"]
        type_ -> Nullable<Text>,
        permissions -> Array<Nullable<Text>>,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    permissions (key) {
        key -> Text,
        id -> Nullable<Text>,
        slug -> Text,
        name -> Nullable<Text>,
        description -> Nullable<Text>,
        system -> Bool,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
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
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    directories (id) {
        id -> Text,
        organization_id -> Nullable<Text>,
        name -> Nullable<Text>,
        #[sql_name = "type"]
        type_ -> Nullable<Text>,
        state -> Nullable<Text>,
        domains -> Array<Nullable<Text>>,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    directory_users (id) {
        id -> Text,
        directory_id -> Text,
        organization_id -> Nullable<Text>,
        idp_id -> Nullable<Text>,
        email -> Nullable<Text>,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        name -> Nullable<Text>,
        job_title -> Nullable<Text>,
        username -> Nullable<Text>,
        state -> Nullable<Text>,
        role_slug -> Nullable<Text>,
        role_slugs -> Array<Nullable<Text>>,
        raw_attributes -> Jsonb,
        custom_attributes -> Jsonb,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    directory_groups (id) {
        id -> Text,
        directory_id -> Text,
        organization_id -> Nullable<Text>,
        idp_id -> Nullable<Text>,
        name -> Nullable<Text>,
        raw_attributes -> Jsonb,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    directory_group_memberships (key) {
        key -> Text,
        directory_id -> Text,
        directory_group_id -> Text,
        directory_user_id -> Text,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        email -> Nullable<Text>,
        state -> Nullable<Text>,
        organization_id -> Nullable<Text>,
        inviter_user_id -> Nullable<Text>,
        accepted_user_id -> Nullable<Text>,
        role_slug -> Nullable<Text>,
        expires_at -> Nullable<Timestamptz>,
        accepted_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    connections (id) {
        id -> Text,
        organization_id -> Nullable<Text>,
        connection_type -> Nullable<Text>,
        name -> Nullable<Text>,
        state -> Nullable<Text>,
        domains -> Array<Nullable<Text>>,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    groups (id) {
        id -> Text,
        organization_id -> Nullable<Text>,
        name -> Nullable<Text>,
        description -> Nullable<Text>,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    group_memberships (key) {
        key -> Text,
        group_id -> Text,
        organization_membership_id -> Text,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        owner_type -> Nullable<Text>,
        owner_id -> Nullable<Text>,
        organization_id -> Nullable<Text>,
        name -> Nullable<Text>,
        obfuscated_value -> Nullable<Text>,
        permissions -> Array<Nullable<Text>>,
        last_used_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        raw -> Jsonb,
        workos_created_at -> Timestamptz,
        workos_updated_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    connections,
    directories,
    directory_group_memberships,
    directory_groups,
    directory_users,
    group_memberships,
    groups,
    invitations,
    organization_domains,
    organization_memberships,
    organizations,
    permissions,
    processed_events,
    roles,
    sync_cursors,
    tombstones,
    users,
);

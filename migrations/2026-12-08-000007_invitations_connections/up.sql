-- Invitations and SSO connections. No foreign keys (events arrive in any order); an
-- organization's delete removes its invitations and connections by the declared parent
-- rule in the apply step, and its tombstone stops anything older. Nothing secret is
-- stored: no invitation token or accept URL, no connection secret or external key.

CREATE TABLE invitations (
    id                 TEXT PRIMARY KEY,            -- WorkOS invitation id
    email              TEXT,
    state              TEXT,                        -- as sent: pending, accepted, expired, revoked…
    organization_id    TEXT,                        -- NULL: an invitation to the application
    inviter_user_id    TEXT,
    accepted_user_id   TEXT,
    role_slug          TEXT,
    expires_at         TIMESTAMPTZ,
    accepted_at        TIMESTAMPTZ,
    revoked_at         TIMESTAMPTZ,
    workos_created_at  TIMESTAMPTZ NOT NULL,
    workos_updated_at  TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- An organization's delete removes its invitations by this column.
CREATE INDEX invitations_organization_id_idx ON invitations (organization_id);

-- WorkOS sends no event when an invitation expires and its updated_at does not move: the
-- table keeps the last state WorkOS sent, and this view reads a pending invitation past
-- its expiry as expired (now() at query time; a view, since a generated column cannot
-- read the clock).
CREATE VIEW invitation_states AS
    SELECT id,
           CASE WHEN state = 'pending' AND expires_at <= now() THEN 'expired' ELSE state END AS state,
           expires_at
      FROM invitations;

CREATE TABLE connections (
    id                 TEXT PRIMARY KEY,            -- WorkOS connection id (conn_…)
    organization_id    TEXT,
    connection_type    TEXT,                        -- OktaSAML, GoogleOAuth, GenericOIDC…
    name               TEXT,
    state              TEXT,                        -- as sent: draft, active, inactive, validating, deleting…
    domains            TEXT[] NOT NULL DEFAULT '{}',
    workos_created_at  TIMESTAMPTZ NOT NULL,
    workos_updated_at  TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX connections_organization_id_idx ON connections (organization_id);

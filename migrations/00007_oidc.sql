-- +goose Up
-- OpenID Connect sign-ins in progress. The browser holds the state in a
-- short-lived cookie; the table holds only its SHA-256 beside the nonce and
-- the PKCE verifier, so each attempt is single-use and bound to the browser
-- that started it.
CREATE TABLE oidc_logins (
    state_hash    bytea PRIMARY KEY,
    nonce         text NOT NULL,
    code_verifier text NOT NULL,
    next          text NOT NULL DEFAULT '/',
    expires_at    timestamptz NOT NULL
);
CREATE INDEX oidc_logins_expires_at_idx ON oidc_logins (expires_at);

-- What the provider last said about an account: who it is there, and the
-- role its role claim granted. Sign-in lowers a role only when it is the one
-- the claim granted before, never one an admin gave by hand.
CREATE TABLE oidc_accounts (
    user_id         uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    issuer          text NOT NULL,
    subject         text NOT NULL,
    granted_role    user_role NOT NULL DEFAULT 'contributor',
    last_sign_in_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE oidc_accounts;
DROP TABLE oidc_logins;

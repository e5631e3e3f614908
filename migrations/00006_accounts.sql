-- +goose Up
-- Sign-in throttling. One row per (client, account) pair and one per client
-- (account = ''): failures since the last success, and the earliest time the
-- next attempt is let through. Attempts take the rows FOR UPDATE and are
-- counted before the password is checked, so parallel guesses cannot slip
-- past the count; an attack from one client never delays another.
CREATE TABLE login_throttle (
    client          text NOT NULL,
    account         text NOT NULL,
    failures        integer NOT NULL DEFAULT 0,
    last_failure_at timestamptz NOT NULL DEFAULT 'epoch',
    next_allowed_at timestamptz NOT NULL DEFAULT 'epoch',
    PRIMARY KEY (client, account)
);
CREATE INDEX login_throttle_last_failure_idx ON login_throttle (last_failure_at);

-- Sign-ups per client in a fixed window.
CREATE TABLE signup_throttle (
    client       text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    attempts     integer NOT NULL
);

-- One-time setup codes: printed by `imagehub serve` while there is no admin,
-- stored as SHA-256 only. Any replica accepts any of them; the first one
-- used makes an admin, and then they are all deleted.
CREATE TABLE setup_codes (
    code_hash  bytea PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

DROP TABLE login_failures;

-- +goose Down
CREATE TABLE login_failures (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_subject_idx ON login_failures (subject, created_at);
DROP TABLE setup_codes;
DROP TABLE signup_throttle;
DROP TABLE login_throttle;

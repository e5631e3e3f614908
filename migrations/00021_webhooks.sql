-- +goose Up

-- Webhooks (docs/webhooks.md): endpoints admins register, one delivery per
-- event and endpoint, and each try of a delivery. A delivery row and its
-- River job (webhook_deliver) are written in the transaction of the event,
-- so a rolled-back change sends nothing and a committed one is never lost.
CREATE TABLE webhook_endpoints (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    url         text        NOT NULL,
    events      text[]      NOT NULL CHECK (cardinality(events) > 0),
    -- The HMAC key of the signatures. It is needed in clear to sign, so it
    -- is stored as it is; the API shows it once, at creation.
    secret      text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    enabled     boolean     NOT NULL DEFAULT true,
    -- Failed tries in a row (any delivery) and when the run began; a run
    -- long enough (WEBHOOK_DISABLE_AFTER_*) disables the endpoint, with
    -- disabled_reason shown to admins.
    consecutive_failures integer     NOT NULL DEFAULT 0,
    failing_since        timestamptz,
    disabled_at          timestamptz,
    disabled_reason      text,
    created_by  uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_events_idx ON webhook_endpoints USING gin (events) WHERE enabled;

CREATE TABLE webhook_deliveries (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event       text        NOT NULL,
    -- The object the event is about; the body (webhook.Payload) is made
    -- from these, the id and created_at (the event's time), the same on
    -- every try. object_state is set for events that end in more than one
    -- way (a training succeeded or failed).
    object_type  text       NOT NULL,
    object_id    text       NOT NULL,
    object_path  text       NOT NULL,
    object_state text,
    -- pending (queued or retrying), delivered, failed (gave up, or the
    -- endpoint was disabled or deleted first).
    state       text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts    integer     NOT NULL DEFAULT 0,
    last_status integer,
    last_error  text,
    last_attempt_at  timestamptz,
    last_duration_ms integer,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);

CREATE TABLE webhook_attempts (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms integer     NOT NULL,
    -- The answer's status, absent when none came (timeout, refused).
    status_code integer,
    error       text
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;

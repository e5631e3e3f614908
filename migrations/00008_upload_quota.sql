-- +goose Up
-- Each contributor's uploads per UTC day, for UPLOAD_QUOTA_FILES_PER_DAY and
-- UPLOAD_QUOTA_BYTES_PER_DAY. A file is counted before it is stored, in one
-- statement that also checks the limits, so parallel uploads and several
-- replicas cannot pass them together.
CREATE TABLE upload_quota (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day     date NOT NULL,
    files   integer NOT NULL CHECK (files >= 0),
    bytes   bigint NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (user_id, day)
);

-- +goose Down
DROP TABLE upload_quota;

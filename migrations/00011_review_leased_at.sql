-- +goose Up

-- When the current lease of a review item began, so that the server can
-- measure the time a review took when the client does not say
-- (time_spent_ms is optional in the API): without it, reviews sent
-- through the API counted no time and /review/stats printed 0.0 items per
-- hour.
ALTER TABLE review_items ADD COLUMN leased_at timestamptz;

-- +goose Down
ALTER TABLE review_items DROP COLUMN leased_at;

-- +goose Up

-- Perceptual hashes of parts of each image (imaging.Windows: a 3×3 grid of
-- windows of 80% of each side), so that a crop of an image already in the
-- hub is found as a near-duplicate (its whole hash is close to one of these)
-- and so is an original that arrives after its crop (one of its window
-- hashes is close to the crop's whole hash). Same banding as images.phash
-- (imaging.Bands).
--
-- Images ingested before this migration have no rows here: a migration
-- cannot decode photos, so the backfill_window_hashes job (queued when the
-- program starts) computes them from each image's grid thumbnail, which is
-- the picture ingest hashes.
CREATE TABLE image_window_hashes (
    image_id  uuid     NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    window_no smallint NOT NULL, -- index into imaging.Windows
    hash      bigint   NOT NULL,
    b0        integer  NOT NULL,
    b1        integer  NOT NULL,
    b2        integer  NOT NULL,
    b3        integer  NOT NULL,
    PRIMARY KEY (image_id, window_no)
);
CREATE INDEX image_window_hashes_b0_idx ON image_window_hashes (b0);
CREATE INDEX image_window_hashes_b1_idx ON image_window_hashes (b1);
CREATE INDEX image_window_hashes_b2_idx ON image_window_hashes (b2);
CREATE INDEX image_window_hashes_b3_idx ON image_window_hashes (b3);

-- +goose Down
DROP TABLE image_window_hashes;

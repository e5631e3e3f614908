-- +goose Up

-- The near-duplicate lookup (ImageNearDuplicateFind) searches each band
-- with an index-only scan: the band indexes carry what the lookup reads of
-- a candidate (its hash, and for images the id and upload time), so that
-- the thousand or so candidates a lookup has at a million images cost no
-- table reads. Same names as the indexes they replace.
DROP INDEX images_phash_b0_idx;
DROP INDEX images_phash_b1_idx;
DROP INDEX images_phash_b2_idx;
DROP INDEX images_phash_b3_idx;
CREATE INDEX images_phash_b0_idx ON images (phash_b0) INCLUDE (phash, created_at, id) WHERE phash IS NOT NULL;
CREATE INDEX images_phash_b1_idx ON images (phash_b1) INCLUDE (phash, created_at, id) WHERE phash IS NOT NULL;
CREATE INDEX images_phash_b2_idx ON images (phash_b2) INCLUDE (phash, created_at, id) WHERE phash IS NOT NULL;
CREATE INDEX images_phash_b3_idx ON images (phash_b3) INCLUDE (phash, created_at, id) WHERE phash IS NOT NULL;

DROP INDEX image_window_hashes_b0_idx;
DROP INDEX image_window_hashes_b1_idx;
DROP INDEX image_window_hashes_b2_idx;
DROP INDEX image_window_hashes_b3_idx;
CREATE INDEX image_window_hashes_b0_idx ON image_window_hashes (b0) INCLUDE (hash, image_id);
CREATE INDEX image_window_hashes_b1_idx ON image_window_hashes (b1) INCLUDE (hash, image_id);
CREATE INDEX image_window_hashes_b2_idx ON image_window_hashes (b2) INCLUDE (hash, image_id);
CREATE INDEX image_window_hashes_b3_idx ON image_window_hashes (b3) INCLUDE (hash, image_id);

-- +goose Down
DROP INDEX image_window_hashes_b0_idx;
DROP INDEX image_window_hashes_b1_idx;
DROP INDEX image_window_hashes_b2_idx;
DROP INDEX image_window_hashes_b3_idx;
CREATE INDEX image_window_hashes_b0_idx ON image_window_hashes (b0);
CREATE INDEX image_window_hashes_b1_idx ON image_window_hashes (b1);
CREATE INDEX image_window_hashes_b2_idx ON image_window_hashes (b2);
CREATE INDEX image_window_hashes_b3_idx ON image_window_hashes (b3);

DROP INDEX images_phash_b0_idx;
DROP INDEX images_phash_b1_idx;
DROP INDEX images_phash_b2_idx;
DROP INDEX images_phash_b3_idx;
CREATE INDEX images_phash_b0_idx ON images (phash_b0) WHERE phash_b0 IS NOT NULL;
CREATE INDEX images_phash_b1_idx ON images (phash_b1) WHERE phash_b1 IS NOT NULL;
CREATE INDEX images_phash_b2_idx ON images (phash_b2) WHERE phash_b2 IS NOT NULL;
CREATE INDEX images_phash_b3_idx ON images (phash_b3) WHERE phash_b3 IS NOT NULL;

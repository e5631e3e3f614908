-- +goose Up

-- Query by committee: when two or more models proposed for an image, how
-- far their proposals agree, computed when the image settles for review
-- (review.RecordModelAgreement). model_agreement is the mean over pairs of
-- models of the matched instances' mean IoU (one to one, same label, IoU
-- at least 0.5, unmatched counting 0); NULL with fewer than two models.
-- The review queue serves low agreement first.
ALTER TABLE review_items ADD COLUMN model_agreement real;
CREATE INDEX review_items_committee_idx ON review_items
    ((coalesce(model_agreement, 1)), confidence NULLS LAST, created_at, id) WHERE done_at IS NULL;

-- The same agreement label by label, over the pairs of models of which at
-- least one proposed the label: what the insights page counts per class.
CREATE TABLE model_agreements (
    image_id  uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    label_id  uuid NOT NULL REFERENCES labels (id),
    models    integer NOT NULL CHECK (models >= 2),
    agreement real NOT NULL CHECK (agreement >= 0 AND agreement <= 1),
    PRIMARY KEY (image_id, label_id)
);
CREATE INDEX model_agreements_label_idx ON model_agreements (label_id);

-- +goose Down
DROP TABLE model_agreements;
DROP INDEX review_items_committee_idx;
ALTER TABLE review_items DROP COLUMN model_agreement;

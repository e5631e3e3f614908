-- +goose Up

CREATE TYPE review_kind AS ENUM ('first', 'second');

-- One unit of a reviewer's work: an image whose proposals wait for review
-- (first), or a reviewed image drawn for a blind second review (second).
-- A lease gives the item to one reviewer until lease_expires_at.
CREATE TABLE review_items (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    image_id         uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    kind             review_kind NOT NULL DEFAULT 'first',
    -- mean score of the image's proposals: the least confident come first
    confidence       real,
    leased_by        uuid REFERENCES users (id),
    lease_expires_at timestamptz,
    -- a second review goes to anyone but the first reviewer
    excluded_user    uuid REFERENCES users (id),
    done_by          uuid REFERENCES users (id),
    done_at          timestamptz,
    time_spent_ms    integer,
    -- second review: mean IoU of matched instances against the first
    -- review (unmatched count as 0); flagged when below the threshold
    agreement        real,
    flagged          boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (image_id, kind)
);
CREATE INDEX review_items_open_idx ON review_items (confidence NULLS LAST, created_at) WHERE done_at IS NULL;
CREATE INDEX review_items_done_by_idx ON review_items (done_by, done_at) WHERE done_at IS NOT NULL;

-- A final instance as a reviewer left it, beside the proposals it may come
-- from. Rows are never updated: a later review of the image writes new rows
-- and sets replaced_at on the old ones, so a published dataset version keeps
-- pointing at what it published. content_sha256 is the SHA-256 of
-- "<label name>\n<height> <width>\n<counts>": what a dataset manifest
-- records to tell a changed annotation from the same one.
CREATE TABLE annotations (
    id             uuid PRIMARY KEY,
    image_id       uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    review_item_id uuid NOT NULL REFERENCES review_items (id) ON DELETE CASCADE,
    label_id       uuid NOT NULL REFERENCES labels (id),
    proposal_id    uuid REFERENCES proposals (id) ON DELETE SET NULL,
    iou            real,
    height         integer NOT NULL,
    width          integer NOT NULL,
    counts         text NOT NULL,
    bbox           integer[] NOT NULL CHECK (cardinality(bbox) = 4),
    area           integer NOT NULL CHECK (area > 0),
    content_sha256 bytea NOT NULL CHECK (length(content_sha256) = 32),
    author_id      uuid NOT NULL REFERENCES users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    replaced_at    timestamptz
);
CREATE INDEX annotations_image_idx ON annotations (image_id, created_at);
CREATE INDEX annotations_review_idx ON annotations (review_item_id);
CREATE INDEX annotations_proposal_idx ON annotations (proposal_id) WHERE proposal_id IS NOT NULL;

-- What a review made of each proposal of its image.
CREATE TABLE proposal_verdicts (
    review_item_id uuid NOT NULL REFERENCES review_items (id) ON DELETE CASCADE,
    proposal_id    uuid NOT NULL REFERENCES proposals (id) ON DELETE CASCADE,
    verdict        text NOT NULL CHECK (verdict IN ('accepted', 'corrected', 'rejected')),
    PRIMARY KEY (review_item_id, proposal_id)
);

-- +goose Down
DROP TABLE proposal_verdicts;
DROP TABLE annotations;
DROP TABLE review_items;
DROP TYPE review_kind;

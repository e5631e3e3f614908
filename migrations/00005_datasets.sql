-- +goose Up

CREATE TYPE dataset_split AS ENUM ('train', 'val', 'test');
CREATE TYPE dataset_version_state AS ENUM ('publishing', 'published', 'failed');
CREATE TYPE dataset_change AS ENUM ('added', 'removed', 'changed');
CREATE TYPE dataset_export_state AS ENUM ('queued', 'running', 'ready', 'failed');

-- A dataset is a saved filter over reviewed images and split ratios. The
-- filter's empty arrays and NULLs mean "any": an empty filter takes every
-- reviewed image. Ratios are parts per million so that the split of an image
-- is an exact integer comparison, the same in SQL and in Go (package
-- dataset). The seed and the ratios never change once the dataset exists:
-- they decide every image's split, which must never change between versions.
CREATE TABLE datasets (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description    text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    label_ids      uuid[] NOT NULL DEFAULT '{}',
    campaign_ids   uuid[] NOT NULL DEFAULT '{}',
    min_sharpness  real,
    min_short_side integer,
    since          timestamptz,
    until          timestamptz,
    train_ppm      integer NOT NULL CHECK (train_ppm >= 0),
    val_ppm        integer NOT NULL CHECK (val_ppm >= 0),
    test_ppm       integer NOT NULL CHECK (test_ppm >= 0),
    seed           bytea NOT NULL CHECK (length(seed) = 16),
    created_by     uuid NOT NULL REFERENCES users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (train_ppm + val_ppm + test_ppm = 1000000)
);
CREATE UNIQUE INDEX datasets_name_key ON datasets (lower(name));

-- COCO category ids of a dataset's labels, given on first appearance and
-- kept, so that a class has the same id in every version.
CREATE TABLE dataset_categories (
    dataset_id  uuid NOT NULL REFERENCES datasets (id),
    label_id    uuid NOT NULL REFERENCES labels (id),
    category_id integer NOT NULL CHECK (category_id >= 1),
    PRIMARY KEY (dataset_id, label_id),
    UNIQUE (dataset_id, category_id)
);

-- A published (or publishing, or failed) version. Numbers of one dataset
-- count up from 1; a failed version keeps its number. filter is the
-- dataset's filter as the version took it, in the API's form, for its
-- README. The counts (per split too), the diff counts against version
-- previous, and published_at are written when the publish job ends;
-- step and progress while it runs. Versions are never deleted.
CREATE TABLE dataset_versions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dataset_id      uuid NOT NULL REFERENCES datasets (id),
    number          integer NOT NULL CHECK (number >= 1),
    state           dataset_version_state NOT NULL DEFAULT 'publishing',
    step            text NOT NULL DEFAULT 'waiting for a worker',
    progress        real NOT NULL DEFAULT 0,
    error           text,
    job_id          bigint,
    filter          jsonb NOT NULL,
    images          integer NOT NULL DEFAULT 0,
    instances       bigint NOT NULL DEFAULT 0,
    bytes           bigint NOT NULL DEFAULT 0,
    train_images    integer NOT NULL DEFAULT 0,
    val_images      integer NOT NULL DEFAULT 0,
    test_images     integer NOT NULL DEFAULT 0,
    train_instances bigint NOT NULL DEFAULT 0,
    val_instances   bigint NOT NULL DEFAULT 0,
    test_instances  bigint NOT NULL DEFAULT 0,
    previous        integer,
    added           integer NOT NULL DEFAULT 0,
    removed         integer NOT NULL DEFAULT 0,
    changed         integer NOT NULL DEFAULT 0,
    created_by      uuid NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    UNIQUE (dataset_id, number)
);
-- One version of a dataset is published at a time: the diff of the next
-- one needs this one finished.
CREATE UNIQUE INDEX dataset_versions_publishing_key ON dataset_versions (dataset_id) WHERE state = 'publishing';

-- The manifest of a version: one row per image, in image id order (ordinal
-- is the position, 1-based, and the image's COCO id). Everything a download
-- needs is copied here or points at rows that never change: annotation
-- rows are never updated (a later review writes new ones), so
-- annotation_ids keep naming the masks this version published, and
-- annotation_labels holds their labels in the same order (a download by
-- label filters on it without reading the annotations). digest is the
-- SHA-256 of the annotations' content hashes in order, to tell a changed
-- image from the same one in the next version's diff. first_annotation is
-- the number of annotations before this image's in the version: the COCO
-- id of its k-th annotation is first_annotation + k.
--
-- A million-image version is a million rows written in one statement, so
-- the table has no foreign keys (their per-row checks would cost more than
-- the insert itself): rows are written only by the publish job, in the
-- transaction that creates the version's other rows, and versions are
-- never deleted. Nor does it point at images: a version is a record of
-- what was published, not a live view.
CREATE TABLE dataset_version_images (
    version_id        uuid NOT NULL,
    ordinal           integer NOT NULL,
    sha256            bytea NOT NULL,
    image_id          uuid NOT NULL,
    split             dataset_split NOT NULL,
    width             integer NOT NULL,
    height            integer NOT NULL,
    content_type      text NOT NULL,
    byte_size         bigint NOT NULL,
    first_annotation  integer NOT NULL,
    annotation_ids    uuid[] NOT NULL,
    annotation_labels uuid[] NOT NULL,
    digest            bytea NOT NULL,
    PRIMARY KEY (version_id, ordinal)
);

-- The categories of a version (names as they were, for immutability) and
-- its class histogram: images and instances of each label in each split.
CREATE TABLE dataset_version_labels (
    version_id      uuid NOT NULL REFERENCES dataset_versions (id),
    category_id     integer NOT NULL,
    label_id        uuid NOT NULL REFERENCES labels (id),
    name            text NOT NULL,
    display_name    text NOT NULL,
    train_images    integer NOT NULL DEFAULT 0,
    val_images      integer NOT NULL DEFAULT 0,
    test_images     integer NOT NULL DEFAULT 0,
    train_instances integer NOT NULL DEFAULT 0,
    val_instances   integer NOT NULL DEFAULT 0,
    test_instances  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (version_id, category_id),
    UNIQUE (version_id, label_id)
);

-- The diff of a version against the one published before it: images
-- added, removed, or whose annotations changed. The first version has no
-- rows (everything is added; its added count says how many). No foreign
-- key, for the same reason as the manifest.
CREATE TABLE dataset_version_changes (
    version_id uuid NOT NULL,
    sha256     bytea NOT NULL,
    image_id   uuid NOT NULL,
    change     dataset_change NOT NULL,
    PRIMARY KEY (version_id, change, sha256)
);

-- A download built once into the blob store by a job, for very large
-- versions. One per version and subset: format, splits and labels, both
-- arrays sorted and empty for "all". splits is text[] rather than an array
-- of dataset_split, which pgx cannot send without registering the type.
CREATE TABLE dataset_exports (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    version_id   uuid NOT NULL REFERENCES dataset_versions (id),
    format       text NOT NULL CHECK (format IN ('coco', 'png')),
    splits       text[] NOT NULL DEFAULT '{}' CHECK (splits <@ ARRAY['train', 'val', 'test']),
    label_ids    uuid[] NOT NULL DEFAULT '{}',
    state        dataset_export_state NOT NULL DEFAULT 'queued',
    progress     real NOT NULL DEFAULT 0,
    blob_key     text,
    byte_size    bigint,
    error        text,
    job_id       bigint,
    requested_by uuid NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    UNIQUE (version_id, format, splits, label_ids)
);

-- The sha256 of the root of an image's near-duplicate group: following
-- near_duplicate_of (which ingest sets once, to an image ingested before)
-- to the image that has none. Publishing hashes it into the split, so the
-- whole group shares one. Depth is capped in case of a cycle, which ingest
-- never makes. NULL when the root has no sha256 (the caller falls back to
-- the image's own).
-- +goose StatementBegin
CREATE FUNCTION near_duplicate_root(image uuid) RETURNS bytea
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    WITH RECURSIVE up(id, depth) AS (
        SELECT image, 0
        UNION ALL
        SELECT i.near_duplicate_of, up.depth + 1 FROM up JOIN images i ON i.id = up.id
        WHERE i.near_duplicate_of IS NOT NULL AND up.depth < 64
    )
    SELECT g.sha256 FROM up JOIN images g ON g.id = up.id ORDER BY up.depth DESC LIMIT 1
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION near_duplicate_root(uuid);
DROP TABLE dataset_exports;
DROP TABLE dataset_version_changes;
DROP TABLE dataset_version_labels;
DROP TABLE dataset_version_images;
DROP TABLE dataset_versions;
DROP TABLE dataset_categories;
DROP TABLE datasets;
DROP TYPE dataset_export_state;
DROP TYPE dataset_change;
DROP TYPE dataset_version_state;
DROP TYPE dataset_split;

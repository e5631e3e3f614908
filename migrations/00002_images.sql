-- +goose Up
-- The label taxonomy. name is the stable key used by the API, models and
-- exports; external_id links to another taxonomy (an Open Images MID such as
-- /m/01yrx).
CREATE TABLE labels (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9 _.()&/''-]{0,99}$'),
    display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    external_id  text UNIQUE CHECK (length(external_id) BETWEEN 1 AND 100),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The 80 COCO category names, so a new hub can take uploads at once.
INSERT INTO labels (name, display_name) VALUES
    ('person', 'Person'),
    ('bicycle', 'Bicycle'),
    ('car', 'Car'),
    ('motorcycle', 'Motorcycle'),
    ('airplane', 'Airplane'),
    ('bus', 'Bus'),
    ('train', 'Train'),
    ('truck', 'Truck'),
    ('boat', 'Boat'),
    ('traffic light', 'Traffic light'),
    ('fire hydrant', 'Fire hydrant'),
    ('stop sign', 'Stop sign'),
    ('parking meter', 'Parking meter'),
    ('bench', 'Bench'),
    ('bird', 'Bird'),
    ('cat', 'Cat'),
    ('dog', 'Dog'),
    ('horse', 'Horse'),
    ('sheep', 'Sheep'),
    ('cow', 'Cow'),
    ('elephant', 'Elephant'),
    ('bear', 'Bear'),
    ('zebra', 'Zebra'),
    ('giraffe', 'Giraffe'),
    ('backpack', 'Backpack'),
    ('umbrella', 'Umbrella'),
    ('handbag', 'Handbag'),
    ('tie', 'Tie'),
    ('suitcase', 'Suitcase'),
    ('frisbee', 'Frisbee'),
    ('skis', 'Skis'),
    ('snowboard', 'Snowboard'),
    ('sports ball', 'Sports ball'),
    ('kite', 'Kite'),
    ('baseball bat', 'Baseball bat'),
    ('baseball glove', 'Baseball glove'),
    ('skateboard', 'Skateboard'),
    ('surfboard', 'Surfboard'),
    ('tennis racket', 'Tennis racket'),
    ('bottle', 'Bottle'),
    ('wine glass', 'Wine glass'),
    ('cup', 'Cup'),
    ('fork', 'Fork'),
    ('knife', 'Knife'),
    ('spoon', 'Spoon'),
    ('bowl', 'Bowl'),
    ('banana', 'Banana'),
    ('apple', 'Apple'),
    ('sandwich', 'Sandwich'),
    ('orange', 'Orange'),
    ('broccoli', 'Broccoli'),
    ('carrot', 'Carrot'),
    ('hot dog', 'Hot dog'),
    ('pizza', 'Pizza'),
    ('donut', 'Donut'),
    ('cake', 'Cake'),
    ('chair', 'Chair'),
    ('couch', 'Couch'),
    ('potted plant', 'Potted plant'),
    ('bed', 'Bed'),
    ('dining table', 'Dining table'),
    ('toilet', 'Toilet'),
    ('tv', 'Tv'),
    ('laptop', 'Laptop'),
    ('mouse', 'Mouse'),
    ('remote', 'Remote'),
    ('keyboard', 'Keyboard'),
    ('cell phone', 'Cell phone'),
    ('microwave', 'Microwave'),
    ('oven', 'Oven'),
    ('toaster', 'Toaster'),
    ('sink', 'Sink'),
    ('refrigerator', 'Refrigerator'),
    ('book', 'Book'),
    ('clock', 'Clock'),
    ('vase', 'Vase'),
    ('scissors', 'Scissors'),
    ('teddy bear', 'Teddy bear'),
    ('hair drier', 'Hair drier'),
    ('toothbrush', 'Toothbrush');

-- A campaign asks the crowd for images of some labels.
CREATE TABLE campaigns (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description  text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    target_count integer NOT NULL CHECK (target_count BETWEEN 1 AND 10000000),
    priority     integer NOT NULL DEFAULT 0,
    closes_at    timestamptz NOT NULL,
    created_by   uuid NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaigns_closes_at_idx ON campaigns (closes_at);

CREATE TABLE campaign_labels (
    campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    label_id    uuid NOT NULL REFERENCES labels (id),
    PRIMARY KEY (campaign_id, label_id)
);

CREATE TYPE image_status AS ENUM (
    'uploaded', 'processing', 'awaiting_inference', 'awaiting_review',
    'reviewed', 'flagged', 'rejected', 'failed'
);

-- One row per distinct upload. upload_sha256 is the hash of the bytes as they
-- arrived (the deduplication key); sha256 is the hash of the canonical bytes
-- that ingest stores after applying orientation and removing metadata.
CREATE TABLE images (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    upload_sha256     bytea NOT NULL UNIQUE CHECK (length(upload_sha256) = 32),
    sha256            bytea CHECK (length(sha256) = 32),
    owner_id          uuid NOT NULL REFERENCES users (id),
    campaign_id       uuid REFERENCES campaigns (id),
    filename          text NOT NULL CHECK (length(filename) <= 255),
    content_type      text NOT NULL,
    byte_size         bigint NOT NULL,
    width             integer NOT NULL,
    height            integer NOT NULL,
    status            image_status NOT NULL DEFAULT 'uploaded',
    reason            text,
    phash             bigint,
    -- The four 16-bit bands of phash, for the near-duplicate index (imaging.Probes).
    phash_b0          integer,
    phash_b1          integer,
    phash_b2          integer,
    phash_b3          integer,
    near_duplicate_of uuid REFERENCES images (id),
    quality           jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX images_sha256_key ON images (sha256);
CREATE INDEX images_status_idx ON images (status, created_at, id);
CREATE INDEX images_campaign_idx ON images (campaign_id, created_at, id) WHERE campaign_id IS NOT NULL;
CREATE INDEX images_created_idx ON images (created_at, id);
CREATE INDEX images_phash_b0_idx ON images (phash_b0) WHERE phash_b0 IS NOT NULL;
CREATE INDEX images_phash_b1_idx ON images (phash_b1) WHERE phash_b1 IS NOT NULL;
CREATE INDEX images_phash_b2_idx ON images (phash_b2) WHERE phash_b2 IS NOT NULL;
CREATE INDEX images_phash_b3_idx ON images (phash_b3) WHERE phash_b3 IS NOT NULL;

-- Every upload of an image by a person, so that a duplicate upload shows in
-- the second contributor's own list too and counts towards their campaign.
CREATE TABLE image_uploads (
    image_id    uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id),
    filename    text NOT NULL CHECK (length(filename) <= 255),
    campaign_id uuid REFERENCES campaigns (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, image_id)
);
CREATE INDEX image_uploads_user_idx ON image_uploads (user_id, created_at, image_id);
CREATE INDEX image_uploads_campaign_idx ON image_uploads (campaign_id) WHERE campaign_id IS NOT NULL;

-- Image-level labels, as contributors gave them.
CREATE TABLE image_labels (
    image_id   uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    label_id   uuid NOT NULL REFERENCES labels (id),
    added_by   uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (image_id, label_id)
);
CREATE INDEX image_labels_label_idx ON image_labels (label_id, image_id);

-- +goose Down
DROP TABLE image_labels;
DROP TABLE image_uploads;
DROP TABLE images;
DROP TYPE image_status;
DROP TABLE campaign_labels;
DROP TABLE campaigns;
DROP TABLE labels;

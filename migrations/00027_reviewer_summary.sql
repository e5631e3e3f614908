-- +goose Up

-- Per reviewer, the figures of /review/stats (ReviewerStats): review items
-- done, those with a time and the time they took, what their reviews made
-- of the models' proposals, and the second reviews of their first reviews
-- with the mean agreement. Counted from review_items and proposal_verdicts
-- they group every done item and count every verdict (issue 12: under
-- 200 ms at a million images); kept here instead, by triggers, the way
-- migration 00018 keeps the insights summaries and for the same reasons:
-- the rows change through review, second review, imports and cascades, and
-- a trigger runs in the writing transaction, so the summary is never
-- behind what a committed transaction shows.

-- What each review item contributes, per user it counts for: its reviewer
-- (items, time, verdicts) and, for a done second review, the first
-- reviewer of its image (second_reviews, agreement). A contribution
-- depends on the item, its verdicts and the image's first review, so it is
-- kept to be subtracted exactly when any of them changes.
CREATE TABLE reviewer_outcomes (
    review_item_id uuid NOT NULL,
    user_id        uuid NOT NULL,
    items          bigint NOT NULL,
    timed_items    bigint NOT NULL,
    time_spent_ms  bigint NOT NULL,
    accepted       bigint NOT NULL,
    corrected      bigint NOT NULL,
    rejected       bigint NOT NULL,
    second_reviews bigint NOT NULL,
    -- agreement_sum is numeric so that adding and subtracting is exact; the
    -- mean agreement is agreement_sum / agreement_n.
    agreement_sum  numeric NOT NULL,
    agreement_n    bigint NOT NULL,
    PRIMARY KEY (review_item_id, user_id)
);

-- The sums of reviewer_outcomes per user.
CREATE TABLE reviewer_summary (
    user_id        uuid PRIMARY KEY,
    items          bigint NOT NULL,
    timed_items    bigint NOT NULL,
    time_spent_ms  bigint NOT NULL,
    accepted       bigint NOT NULL,
    corrected      bigint NOT NULL,
    rejected       bigint NOT NULL,
    second_reviews bigint NOT NULL,
    agreement_sum  numeric NOT NULL,
    agreement_n    bigint NOT NULL
);

-- Writers append here, as to proposal_summary_deltas: a second review
-- changes its reviewer's row and the first reviewer's, and two reviews
-- would otherwise wait on each other's row locks (or deadlock).
-- insight_compact_summaries folds them in.
CREATE TABLE reviewer_summary_deltas (
    user_id        uuid NOT NULL,
    items          bigint NOT NULL,
    timed_items    bigint NOT NULL,
    time_spent_ms  bigint NOT NULL,
    accepted       bigint NOT NULL,
    corrected      bigint NOT NULL,
    rejected       bigint NOT NULL,
    second_reviews bigint NOT NULL,
    agreement_sum  numeric NOT NULL,
    agreement_n    bigint NOT NULL
);

CREATE VIEW reviewer_summary_now AS
SELECT user_id, sum(items) AS items, sum(timed_items) AS timed_items, sum(time_spent_ms) AS time_spent_ms,
    sum(accepted) AS accepted, sum(corrected) AS corrected, sum(rejected) AS rejected,
    sum(second_reviews) AS second_reviews, sum(agreement_sum) AS agreement_sum, sum(agreement_n) AS agreement_n
FROM (SELECT * FROM reviewer_summary UNION ALL SELECT * FROM reviewer_summary_deltas) s
GROUP BY user_id;

-- +goose StatementBegin
-- reviewer_recount_items replaces the contributions of some review items
-- with what the tables hold now, appending the difference to the deltas.
-- The figures are ReviewerStatsFullCount's, item by item. PL/pgSQL, not
-- SQL, so that the statement's plan is kept for the session: it runs in
-- every review's transaction, and planning it took longer than running it.
CREATE FUNCTION reviewer_recount_items(ids uuid[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WITH old AS (
        DELETE FROM reviewer_outcomes WHERE review_item_id = ANY(ids) RETURNING *
    ), fresh AS (
        SELECT review_item_id, user_id, sum(items) AS items, sum(timed_items) AS timed_items,
            sum(time_spent_ms) AS time_spent_ms, sum(accepted) AS accepted, sum(corrected) AS corrected,
            sum(rejected) AS rejected, sum(second_reviews) AS second_reviews,
            sum(agreement_sum) AS agreement_sum, sum(agreement_n) AS agreement_n
        FROM (
            -- What the item's reviewer did.
            SELECT r.id AS review_item_id, r.done_by AS user_id, 1 AS items,
                CASE WHEN r.time_spent_ms > 0 THEN 1 ELSE 0 END AS timed_items,
                CASE WHEN r.time_spent_ms > 0 THEN r.time_spent_ms ELSE 0 END::bigint AS time_spent_ms,
                v.accepted, v.corrected, v.rejected,
                0 AS second_reviews, 0::numeric AS agreement_sum, 0 AS agreement_n
            FROM review_items r
            CROSS JOIN LATERAL (
                SELECT count(*) FILTER (WHERE pv.verdict = 'accepted') AS accepted,
                    count(*) FILTER (WHERE pv.verdict = 'corrected') AS corrected,
                    count(*) FILTER (WHERE pv.verdict = 'rejected') AS rejected
                FROM proposal_verdicts pv WHERE pv.review_item_id = r.id
            ) v
            WHERE r.id = ANY(ids) AND r.done_by IS NOT NULL
            UNION ALL
            -- A done second review, for the first reviewer of its image.
            SELECT s.id, f.done_by, 0, 0, 0, 0, 0, 0, 1,
                coalesce(s.agreement::float8::numeric, 0), CASE WHEN s.agreement IS NULL THEN 0 ELSE 1 END
            FROM review_items s
            JOIN review_items f ON f.image_id = s.image_id AND f.kind = 'first'
            WHERE s.id = ANY(ids) AND s.kind = 'second' AND s.done_at IS NOT NULL AND f.done_by IS NOT NULL
        ) c
        GROUP BY review_item_id, user_id
    ), kept AS (
        INSERT INTO reviewer_outcomes
            (review_item_id, user_id, items, timed_items, time_spent_ms, accepted, corrected, rejected,
             second_reviews, agreement_sum, agreement_n)
        SELECT * FROM fresh RETURNING 1
    ), delta AS (
        SELECT user_id, sum(items) AS items, sum(timed_items) AS timed_items, sum(time_spent_ms) AS time_spent_ms,
            sum(accepted) AS accepted, sum(corrected) AS corrected, sum(rejected) AS rejected,
            sum(second_reviews) AS second_reviews, sum(agreement_sum) AS agreement_sum, sum(agreement_n) AS agreement_n
        FROM (SELECT user_id, items, timed_items, time_spent_ms, accepted, corrected, rejected,
                     second_reviews, agreement_sum, agreement_n FROM fresh
              UNION ALL
              SELECT user_id, -items, -timed_items, -time_spent_ms, -accepted, -corrected, -rejected,
                     -second_reviews, -agreement_sum, -agreement_n FROM old) d
        GROUP BY user_id
        HAVING sum(items) <> 0 OR sum(timed_items) <> 0 OR sum(time_spent_ms) <> 0 OR sum(accepted) <> 0
            OR sum(corrected) <> 0 OR sum(rejected) <> 0 OR sum(second_reviews) <> 0
            OR sum(agreement_sum) <> 0 OR sum(agreement_n) <> 0
    )
    INSERT INTO reviewer_summary_deltas SELECT * FROM delta;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- reviewer_lock_and_recount recounts some review items one transaction at
-- a time, each seeing what the one before committed, so that an item's
-- saved contribution is what the summary holds (insight_proposals_changed
-- locks proposals for the same reason). NO KEY UPDATE does not wait on the
-- KEY SHARE lock that inserting a verdict takes on its item. Rows the
-- transaction deleted are locked by it already. Items that neither count
-- nor counted are left out once locked: a first review's verdicts go in
-- before the item is done, and recounting it then would find nothing.
CREATE FUNCTION reviewer_lock_and_recount(ids uuid[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF ids IS NULL OR cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM review_items WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;
    SELECT array_agg(u.id) INTO ids FROM unnest(ids) AS u(id)
    WHERE EXISTS (SELECT 1 FROM review_items r
                  WHERE r.id = u.id AND (r.done_by IS NOT NULL OR (r.kind = 'second' AND r.done_at IS NOT NULL)))
       OR EXISTS (SELECT 1 FROM reviewer_outcomes o WHERE o.review_item_id = u.id);
    IF ids IS NOT NULL THEN
        PERFORM reviewer_recount_items(ids);
    END IF;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- Inserted or deleted items: those that count, and the second reviews of
-- the images of first reviews (which count for the first reviewer). An
-- item inserted waiting for review (no reviewer yet) counts for no one.
CREATE FUNCTION reviewer_items_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[];
BEGIN
    SELECT array_agg(DISTINCT id) INTO ids FROM (
        SELECT id FROM new_rows WHERE done_by IS NOT NULL OR (kind = 'second' AND done_at IS NOT NULL)
        UNION
        SELECT s.id FROM new_rows n JOIN review_items s ON s.image_id = n.image_id AND s.kind = 'second'
        WHERE n.kind = 'first' AND n.done_by IS NOT NULL
    ) u;
    PERFORM reviewer_lock_and_recount(ids);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION reviewer_items_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[];
BEGIN
    SELECT array_agg(DISTINCT id) INTO ids FROM (
        SELECT id FROM old_rows WHERE done_by IS NOT NULL OR (kind = 'second' AND done_at IS NOT NULL)
        UNION
        SELECT s.id FROM old_rows o JOIN review_items s ON s.image_id = o.image_id AND s.kind = 'second'
        WHERE o.kind = 'first' AND o.done_by IS NOT NULL
    ) u;
    PERFORM reviewer_lock_and_recount(ids);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- An updated item, row by row and only when a column that counts changed
-- (the trigger's WHEN): leases and renewals, the queue's most frequent
-- writes, call nothing. A first review whose reviewer changes moves the
-- second reviews of its image to the new one.
CREATE FUNCTION reviewer_item_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[] := ARRAY[NEW.id];
BEGIN
    IF (OLD.kind = 'first' OR NEW.kind = 'first')
       AND (OLD.done_by IS DISTINCT FROM NEW.done_by OR OLD.image_id <> NEW.image_id OR OLD.kind <> NEW.kind) THEN
        ids := ids || ARRAY(SELECT id FROM review_items
                            WHERE image_id IN (OLD.image_id, NEW.image_id) AND kind = 'second' AND id <> NEW.id);
    END IF;
    PERFORM reviewer_lock_and_recount(ids);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION reviewer_verdicts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT review_item_id) INTO ids FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT review_item_id) INTO ids FROM old_rows;
    ELSE
        SELECT array_agg(DISTINCT review_item_id) INTO ids
        FROM (SELECT review_item_id FROM new_rows UNION SELECT review_item_id FROM old_rows) u;
    END IF;
    PERFORM reviewer_lock_and_recount(ids);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER review_items_reviewer_insert AFTER INSERT ON review_items
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION reviewer_items_inserted();
CREATE TRIGGER review_items_reviewer_delete AFTER DELETE ON review_items
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION reviewer_items_deleted();
CREATE TRIGGER review_items_reviewer_update AFTER UPDATE ON review_items FOR EACH ROW
    WHEN (OLD.done_by IS DISTINCT FROM NEW.done_by OR OLD.time_spent_ms IS DISTINCT FROM NEW.time_spent_ms
          OR OLD.agreement IS DISTINCT FROM NEW.agreement OR (OLD.done_at IS NULL) <> (NEW.done_at IS NULL)
          OR OLD.kind <> NEW.kind OR OLD.image_id <> NEW.image_id)
    EXECUTE FUNCTION reviewer_item_updated();
CREATE TRIGGER proposal_verdicts_reviewer_insert AFTER INSERT ON proposal_verdicts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION reviewer_verdicts_changed();
CREATE TRIGGER proposal_verdicts_reviewer_update AFTER UPDATE ON proposal_verdicts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION reviewer_verdicts_changed();
CREATE TRIGGER proposal_verdicts_reviewer_delete AFTER DELETE ON proposal_verdicts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION reviewer_verdicts_changed();

-- +goose StatementBegin
-- insight_compact_summaries (migration 00018) folds the reviewer deltas in
-- as well, in the same transaction and under the same lock.
CREATE OR REPLACE FUNCTION insight_compact_summaries() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    moved bigint;
    more bigint;
    reviewers bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('insight_compact_summaries'));
    WITH d AS (DELETE FROM proposal_summary_deltas RETURNING *), g AS (
        SELECT model_id, label_id, final_label_id, verdict, sum(n) AS n, sum(iou_sum) AS iou_sum, sum(iou_n) AS iou_n, count(*) AS rows
        FROM d GROUP BY 1, 2, 3, 4
    ), up AS (
        INSERT INTO proposal_summary AS s
        SELECT model_id, label_id, final_label_id, verdict, n, iou_sum, iou_n FROM g
        ON CONFLICT (model_id, label_id, final_label_id, verdict) DO UPDATE
        SET n = s.n + EXCLUDED.n, iou_sum = s.iou_sum + EXCLUDED.iou_sum, iou_n = s.iou_n + EXCLUDED.iou_n
    )
    SELECT coalesce(sum(rows), 0) INTO moved FROM g;
    WITH d AS (DELETE FROM model_agreement_summary_deltas RETURNING *), g AS (
        SELECT label_id, sum(images) AS images, sum(agreed) AS agreed, sum(agreement_sum) AS agreement_sum, count(*) AS rows
        FROM d GROUP BY 1
    ), up AS (
        INSERT INTO model_agreement_summary AS s
        SELECT label_id, images, agreed, agreement_sum FROM g
        ON CONFLICT (label_id) DO UPDATE
        SET images = s.images + EXCLUDED.images, agreed = s.agreed + EXCLUDED.agreed,
            agreement_sum = s.agreement_sum + EXCLUDED.agreement_sum
    )
    SELECT coalesce(sum(rows), 0) INTO more FROM g;
    WITH d AS (DELETE FROM reviewer_summary_deltas RETURNING *), g AS (
        SELECT user_id, sum(items) AS items, sum(timed_items) AS timed_items, sum(time_spent_ms) AS time_spent_ms,
            sum(accepted) AS accepted, sum(corrected) AS corrected, sum(rejected) AS rejected,
            sum(second_reviews) AS second_reviews, sum(agreement_sum) AS agreement_sum, sum(agreement_n) AS agreement_n,
            count(*) AS rows
        FROM d GROUP BY 1
    ), up AS (
        INSERT INTO reviewer_summary AS s
        SELECT user_id, items, timed_items, time_spent_ms, accepted, corrected, rejected, second_reviews, agreement_sum, agreement_n
        FROM g
        ON CONFLICT (user_id) DO UPDATE
        SET items = s.items + EXCLUDED.items, timed_items = s.timed_items + EXCLUDED.timed_items,
            time_spent_ms = s.time_spent_ms + EXCLUDED.time_spent_ms, accepted = s.accepted + EXCLUDED.accepted,
            corrected = s.corrected + EXCLUDED.corrected, rejected = s.rejected + EXCLUDED.rejected,
            second_reviews = s.second_reviews + EXCLUDED.second_reviews,
            agreement_sum = s.agreement_sum + EXCLUDED.agreement_sum, agreement_n = s.agreement_n + EXCLUDED.agreement_n
    )
    SELECT coalesce(sum(rows), 0) INTO reviewers FROM g;
    RETURN moved + more + reviewers;
END;
$$;
-- +goose StatementEnd

-- ReviewsFlagged: the latest flagged second reviews, read in order.
CREATE INDEX review_items_flagged_idx ON review_items (done_at DESC) WHERE kind = 'second' AND flagged;

-- Backfill from what the tables hold now.
SELECT reviewer_recount_items(coalesce(array_agg(id), '{}')) FROM review_items
WHERE done_by IS NOT NULL OR (kind = 'second' AND done_at IS NOT NULL);
SELECT insight_compact_summaries();

-- +goose Down
DROP INDEX review_items_flagged_idx;

-- +goose StatementBegin
-- insight_compact_summaries as migration 00018 made it.
CREATE OR REPLACE FUNCTION insight_compact_summaries() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    moved bigint;
    more bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('insight_compact_summaries'));
    WITH d AS (DELETE FROM proposal_summary_deltas RETURNING *), g AS (
        SELECT model_id, label_id, final_label_id, verdict, sum(n) AS n, sum(iou_sum) AS iou_sum, sum(iou_n) AS iou_n, count(*) AS rows
        FROM d GROUP BY 1, 2, 3, 4
    ), up AS (
        INSERT INTO proposal_summary AS s
        SELECT model_id, label_id, final_label_id, verdict, n, iou_sum, iou_n FROM g
        ON CONFLICT (model_id, label_id, final_label_id, verdict) DO UPDATE
        SET n = s.n + EXCLUDED.n, iou_sum = s.iou_sum + EXCLUDED.iou_sum, iou_n = s.iou_n + EXCLUDED.iou_n
    )
    SELECT coalesce(sum(rows), 0) INTO moved FROM g;
    WITH d AS (DELETE FROM model_agreement_summary_deltas RETURNING *), g AS (
        SELECT label_id, sum(images) AS images, sum(agreed) AS agreed, sum(agreement_sum) AS agreement_sum, count(*) AS rows
        FROM d GROUP BY 1
    ), up AS (
        INSERT INTO model_agreement_summary AS s
        SELECT label_id, images, agreed, agreement_sum FROM g
        ON CONFLICT (label_id) DO UPDATE
        SET images = s.images + EXCLUDED.images, agreed = s.agreed + EXCLUDED.agreed,
            agreement_sum = s.agreement_sum + EXCLUDED.agreement_sum
    )
    SELECT coalesce(sum(rows), 0) INTO more FROM g;
    RETURN moved + more;
END;
$$;
-- +goose StatementEnd

DROP TRIGGER proposal_verdicts_reviewer_delete ON proposal_verdicts;
DROP TRIGGER proposal_verdicts_reviewer_update ON proposal_verdicts;
DROP TRIGGER proposal_verdicts_reviewer_insert ON proposal_verdicts;
DROP TRIGGER review_items_reviewer_update ON review_items;
DROP TRIGGER review_items_reviewer_delete ON review_items;
DROP TRIGGER review_items_reviewer_insert ON review_items;
DROP FUNCTION reviewer_verdicts_changed();
DROP FUNCTION reviewer_item_updated();
DROP FUNCTION reviewer_items_deleted();
DROP FUNCTION reviewer_items_inserted();
DROP FUNCTION reviewer_lock_and_recount(uuid[]);
DROP FUNCTION reviewer_recount_items(uuid[]);
DROP VIEW reviewer_summary_now;
DROP TABLE reviewer_summary_deltas;
DROP TABLE reviewer_summary;
DROP TABLE reviewer_outcomes;

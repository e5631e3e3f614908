-- +goose Up

-- Summaries the insights pages read instead of scanning proposals,
-- verdicts, annotations and model agreements (issue 12: under 200 ms at a
-- million images). They are kept by triggers rather than by the Go write
-- paths because the counted rows change through many paths (review, second
-- review, moderation, imports, inference, evaluation) and through cascades
-- (deleting an image, a review item or a proposal) that no Go code sees; a
-- trigger runs in the writing transaction, so a summary is never behind
-- what a committed transaction shows. The triggers are statement-level with
-- transition tables, so a bulk COPY or a cascade over many rows recounts
-- its proposals in one set-based statement, not row by row.

-- What each proposal contributes to the summary: the rows of
--   proposals p LEFT JOIN proposal_verdicts v ON v.proposal_id = p.id
--   LEFT JOIN annotations a ON a.proposal_id = p.id AND a.review_item_id = v.review_item_id
-- grouped by final label and verdict ('' and the nil uuid when none). A
-- proposal's contribution depends on three tables, so it is kept to be
-- subtracted exactly when any of them changes.
CREATE TABLE proposal_outcomes (
    proposal_id    uuid NOT NULL,
    model_id       uuid NOT NULL,
    label_id       uuid NOT NULL,
    final_label_id uuid NOT NULL,
    verdict        text NOT NULL,
    n              bigint NOT NULL,
    iou_sum        numeric NOT NULL,
    iou_n          bigint NOT NULL,
    PRIMARY KEY (proposal_id, final_label_id, verdict)
);

-- The sums of proposal_outcomes per model, proposed label, final label
-- and verdict: a few rows per model and label whatever the number of
-- proposals. iou_sum is numeric so that adding and subtracting is exact;
-- the mean IoU is iou_sum / iou_n (a rejected proposal counting 0).
CREATE TABLE proposal_summary (
    model_id       uuid NOT NULL,
    label_id       uuid NOT NULL,
    final_label_id uuid NOT NULL,
    verdict        text NOT NULL,
    n              bigint NOT NULL,
    iou_sum        numeric NOT NULL,
    iou_n          bigint NOT NULL,
    PRIMARY KEY (model_id, label_id, final_label_id, verdict)
);
CREATE INDEX proposal_summary_label_idx ON proposal_summary (label_id);

-- Writers append their changes to the summary here rather than updating
-- proposal_summary's rows: two reviews of the same model and label would
-- otherwise wait on each other's row locks (and could deadlock, each
-- holding one summary row and wanting the other's). The readers add the
-- deltas to the summary (proposal_summary_now); insight_compact_summaries,
-- run by a periodic job, folds them in.
CREATE TABLE proposal_summary_deltas (
    model_id       uuid NOT NULL,
    label_id       uuid NOT NULL,
    final_label_id uuid NOT NULL,
    verdict        text NOT NULL,
    n              bigint NOT NULL,
    iou_sum        numeric NOT NULL,
    iou_n          bigint NOT NULL
);

CREATE VIEW proposal_summary_now AS
SELECT model_id, label_id, final_label_id, verdict, sum(n) AS n, sum(iou_sum) AS iou_sum, sum(iou_n) AS iou_n
FROM (SELECT * FROM proposal_summary UNION ALL SELECT * FROM proposal_summary_deltas) s
GROUP BY model_id, label_id, final_label_id, verdict;

-- model_agreements per label. agreed counts agreements of at least 0.5,
-- review.CommitteeAgreed (a test compares with the full count at that
-- threshold, so changing one without the other fails it).
CREATE TABLE model_agreement_summary (
    label_id      uuid PRIMARY KEY,
    images        bigint NOT NULL,
    agreed        bigint NOT NULL,
    agreement_sum numeric NOT NULL
);

CREATE TABLE model_agreement_summary_deltas (
    label_id      uuid NOT NULL,
    images        bigint NOT NULL,
    agreed        bigint NOT NULL,
    agreement_sum numeric NOT NULL
);

CREATE VIEW model_agreement_summary_now AS
SELECT label_id, sum(images) AS images, sum(agreed) AS agreed, sum(agreement_sum) AS agreement_sum
FROM (SELECT * FROM model_agreement_summary UNION ALL SELECT * FROM model_agreement_summary_deltas) s
GROUP BY label_id;

-- +goose StatementBegin
-- insight_recount_proposals replaces the contributions of some proposals
-- with what the tables hold now, appending the difference to the deltas.
CREATE FUNCTION insight_recount_proposals(ids uuid[]) RETURNS void LANGUAGE sql AS $$
    WITH old AS (
        DELETE FROM proposal_outcomes WHERE proposal_id = ANY(ids) RETURNING *
    ), fresh AS (
        SELECT p.id AS proposal_id, p.model_id, p.label_id,
            coalesce(a.label_id, '00000000-0000-0000-0000-000000000000'::uuid) AS final_label_id,
            coalesce(v.verdict, '') AS verdict,
            count(*) AS n,
            coalesce(sum((CASE WHEN v.verdict = 'rejected' THEN 0 ELSE a.iou END)::float8::numeric), 0) AS iou_sum,
            count(CASE WHEN v.verdict = 'rejected' THEN 0 ELSE a.iou END) AS iou_n
        FROM proposals p
        LEFT JOIN proposal_verdicts v ON v.proposal_id = p.id
        LEFT JOIN annotations a ON a.proposal_id = p.id AND a.review_item_id = v.review_item_id
        WHERE p.id = ANY(ids)
        GROUP BY p.id, p.model_id, p.label_id, 4, 5
    ), kept AS (
        INSERT INTO proposal_outcomes SELECT * FROM fresh RETURNING 1
    ), delta AS (
        SELECT model_id, label_id, final_label_id, verdict, sum(n) AS n, sum(iou_sum) AS iou_sum, sum(iou_n) AS iou_n
        FROM (SELECT model_id, label_id, final_label_id, verdict, n, iou_sum, iou_n FROM fresh
              UNION ALL
              SELECT model_id, label_id, final_label_id, verdict, -n, -iou_sum, -iou_n FROM old) d
        GROUP BY 1, 2, 3, 4
        HAVING sum(n) <> 0 OR sum(iou_n) <> 0 OR sum(iou_sum) <> 0
    )
    INSERT INTO proposal_summary_deltas SELECT * FROM delta;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION insight_proposals_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[];
BEGIN
    -- Which column names the proposal depends on the table.
    IF TG_TABLE_NAME = 'proposals' THEN
        IF TG_OP = 'INSERT' THEN
            SELECT array_agg(DISTINCT id) INTO ids FROM new_rows;
        ELSIF TG_OP = 'DELETE' THEN
            SELECT array_agg(DISTINCT id) INTO ids FROM old_rows;
        ELSE
            SELECT array_agg(DISTINCT id) INTO ids FROM (SELECT id FROM new_rows UNION SELECT id FROM old_rows) u;
        END IF;
    ELSE
        IF TG_OP = 'INSERT' THEN
            SELECT array_agg(DISTINCT proposal_id) INTO ids FROM new_rows WHERE proposal_id IS NOT NULL;
        ELSIF TG_OP = 'DELETE' THEN
            SELECT array_agg(DISTINCT proposal_id) INTO ids FROM old_rows WHERE proposal_id IS NOT NULL;
        ELSE
            SELECT array_agg(DISTINCT proposal_id) INTO ids
            FROM (SELECT proposal_id FROM new_rows UNION SELECT proposal_id FROM old_rows) u WHERE proposal_id IS NOT NULL;
        END IF;
    END IF;
    IF ids IS NOT NULL THEN
        -- One recount of a proposal at a time, each seeing what the one
        -- before committed: its saved contribution must be what the
        -- summary holds. NO KEY UPDATE, not UPDATE, so as not to wait on
        -- the KEY SHARE locks that inserting a verdict or an annotation
        -- takes on the proposal. A deleted proposal is locked by its
        -- deleter already.
        PERFORM 1 FROM proposals WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;
        PERFORM insight_recount_proposals(ids);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER proposals_summary_insert AFTER INSERT ON proposals
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_proposals_changed();
CREATE TRIGGER proposals_summary_update AFTER UPDATE ON proposals
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_proposals_changed();
CREATE TRIGGER proposals_summary_delete AFTER DELETE ON proposals
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_proposals_changed();
CREATE TRIGGER proposal_verdicts_summary_insert AFTER INSERT ON proposal_verdicts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_proposals_changed();
CREATE TRIGGER proposal_verdicts_summary_update AFTER UPDATE ON proposal_verdicts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_proposals_changed();
CREATE TRIGGER proposal_verdicts_summary_delete AFTER DELETE ON proposal_verdicts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_proposals_changed();
CREATE TRIGGER annotations_summary_insert AFTER INSERT ON annotations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_proposals_changed();
CREATE TRIGGER annotations_summary_update AFTER UPDATE ON annotations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_proposals_changed();
CREATE TRIGGER annotations_summary_delete AFTER DELETE ON annotations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_proposals_changed();

-- +goose StatementBegin
-- insight_agreements_add adds (sign 1) or subtracts (-1) some agreements.
CREATE FUNCTION insight_agreements_add(label_ids uuid[], agreements real[], sign int) RETURNS void LANGUAGE sql AS $$
    INSERT INTO model_agreement_summary_deltas
    SELECT label_id, sign * count(*), sign * count(*) FILTER (WHERE agreement >= 0.5), sign * sum(agreement::float8::numeric)
    FROM unnest(label_ids, agreements) AS d (label_id, agreement)
    GROUP BY label_id;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- insight_compact_summaries folds the deltas into the summaries, in one
-- transaction so that a reader sees them either all before or all after.
-- Writers only append deltas, so it waits on no writer; two compactions
-- take turns.
CREATE FUNCTION insight_compact_summaries() RETURNS bigint LANGUAGE plpgsql AS $$
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

-- +goose StatementBegin
-- A statement trigger can name only the transition tables its event has,
-- hence one function for new rows and one for old.
CREATE FUNCTION insight_agreements_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM insight_agreements_add(array_agg(label_id), array_agg(agreement), 1) FROM new_rows HAVING count(*) > 0;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION insight_agreements_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM insight_agreements_add(array_agg(label_id), array_agg(agreement), -1) FROM old_rows HAVING count(*) > 0;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER model_agreements_summary_insert AFTER INSERT ON model_agreements
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_agreements_new();
CREATE TRIGGER model_agreements_summary_update_old AFTER UPDATE ON model_agreements
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_agreements_old();
CREATE TRIGGER model_agreements_summary_update_new AFTER UPDATE ON model_agreements
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_agreements_new();
CREATE TRIGGER model_agreements_summary_delete AFTER DELETE ON model_agreements
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION insight_agreements_old();

-- Backfill from what the tables hold now.
SELECT insight_recount_proposals(coalesce(array_agg(id), '{}')) FROM proposals;
SELECT insight_agreements_add(coalesce(array_agg(label_id), '{}'), coalesce(array_agg(agreement), '{}'), 1) FROM model_agreements
HAVING count(*) > 0;
SELECT insight_compact_summaries();

-- +goose Down
DROP TRIGGER model_agreements_summary_delete ON model_agreements;
DROP TRIGGER model_agreements_summary_update_new ON model_agreements;
DROP TRIGGER model_agreements_summary_update_old ON model_agreements;
DROP TRIGGER model_agreements_summary_insert ON model_agreements;
DROP FUNCTION insight_agreements_old();
DROP FUNCTION insight_agreements_new();
DROP FUNCTION insight_compact_summaries();
DROP FUNCTION insight_agreements_add(uuid[], real[], int);
DROP TRIGGER annotations_summary_delete ON annotations;
DROP TRIGGER annotations_summary_update ON annotations;
DROP TRIGGER annotations_summary_insert ON annotations;
DROP TRIGGER proposal_verdicts_summary_delete ON proposal_verdicts;
DROP TRIGGER proposal_verdicts_summary_update ON proposal_verdicts;
DROP TRIGGER proposal_verdicts_summary_insert ON proposal_verdicts;
DROP TRIGGER proposals_summary_delete ON proposals;
DROP TRIGGER proposals_summary_update ON proposals;
DROP TRIGGER proposals_summary_insert ON proposals;
DROP FUNCTION insight_proposals_changed();
DROP FUNCTION insight_recount_proposals(uuid[]);
DROP VIEW model_agreement_summary_now;
DROP TABLE model_agreement_summary_deltas;
DROP TABLE model_agreement_summary;
DROP VIEW proposal_summary_now;
DROP TABLE proposal_summary_deltas;
DROP TABLE proposal_summary;
DROP TABLE proposal_outcomes;

-- name: LabelList :many
SELECT * FROM labels ORDER BY name;

-- name: LabelGetByNames :many
SELECT * FROM labels WHERE name = ANY(@names::text[]);

-- name: LabelGet :one
SELECT * FROM labels WHERE id = @id;

-- name: LabelUpsert :one
-- Imports match on external_id when there is one, else on name.
INSERT INTO labels (name, display_name, external_id)
VALUES (@name, @display_name, sqlc.narg(external_id))
ON CONFLICT (name) DO UPDATE
SET display_name = EXCLUDED.display_name,
    external_id = coalesce(EXCLUDED.external_id, labels.external_id)
RETURNING *;

-- name: LabelUpdate :one
UPDATE labels SET display_name = @display_name, external_id = sqlc.narg(external_id)
WHERE id = @id RETURNING *;

-- name: LabelInsert :one
INSERT INTO labels (name, display_name, external_id)
VALUES (@name, @display_name, sqlc.narg(external_id))
RETURNING *;

-- name: LabelGetByExternalID :one
SELECT * FROM labels WHERE external_id = @external_id;

-- name: LabelPage :many
-- One page of the taxonomy in name order, after the name of the last label
-- of the page before (names are unique; '' sorts before every valid name).
SELECT * FROM labels WHERE name > @after_name::text ORDER BY name LIMIT @lim;

-- name: LabelNames :many
-- Every label's name, for a model whose classes are the hub's (a Label
-- Studio ML backend registered without labels).
SELECT name FROM labels ORDER BY name;

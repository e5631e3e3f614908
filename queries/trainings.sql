-- name: TrainingArtifactReferenced :one
-- Whether a training records the artifact stored under this key (orphan
-- sweep: an upload whose transaction never committed leaves a blob no
-- training names).
SELECT EXISTS (SELECT 1 FROM trainings WHERE artifact_key = @key::text);

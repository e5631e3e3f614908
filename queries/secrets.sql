-- name: HubSecretEnsure :one
-- The secret named @name, made from @secret by the first process that asks.
WITH ins AS (
    INSERT INTO hub_secrets (name, secret) VALUES (@name, @secret)
    ON CONFLICT (name) DO NOTHING
    RETURNING secret
)
SELECT secret FROM ins
UNION ALL
SELECT secret FROM hub_secrets WHERE name = @name
LIMIT 1;

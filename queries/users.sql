-- name: UserInsertWithRole :one
INSERT INTO users (email, name, password_hash, role)
VALUES (@email, @name, @password_hash, @role)
RETURNING *;

-- name: UserGet :one
SELECT * FROM users WHERE id = @id;

-- name: UserGetByEmail :one
SELECT * FROM users WHERE lower(email) = lower(@email);

-- name: UserEmailExists :one
SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower(@email));

-- name: UserList :many
-- Keyset paging on (created_at, id): stable under inserts, no offsets.
SELECT * FROM users
WHERE (sqlc.narg(after_created_at)::timestamptz IS NULL
       OR (created_at, id) > (sqlc.narg(after_created_at)::timestamptz, sqlc.narg(after_id)::uuid))
ORDER BY created_at, id
LIMIT @max_rows;

-- name: UserSetRole :one
UPDATE users SET role = @role, updated_at = now() WHERE id = @id RETURNING *;

-- name: UserCountByRole :one
SELECT count(*) FROM users WHERE role = @role;

-- name: UserFirstAdmin :one
SELECT * FROM users WHERE role = 'admin' ORDER BY created_at, id LIMIT 1;

-- name: UserAdminExists :one
SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin');

-- name: UserSetPassword :exec
UPDATE users SET password_hash = @password_hash, updated_at = now() WHERE id = @id;

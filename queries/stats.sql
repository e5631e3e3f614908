-- name: ModelQuality :many
-- How reviewers judged each model version's proposals, per label (the label
-- the model proposed). mean_iou is over the reviewed proposals: the IoU
-- between a kept proposal and the final mask, a rejected one counting 0.
-- From proposal_summary (migration 00015).
SELECT m.name AS model_name, m.version AS model_version, l.name AS label,
    sum(s.n)::int AS proposals,
    coalesce(sum(s.n) FILTER (WHERE s.verdict = 'accepted'), 0)::int AS accepted,
    coalesce(sum(s.n) FILTER (WHERE s.verdict = 'corrected'), 0)::int AS corrected,
    coalesce(sum(s.n) FILTER (WHERE s.verdict = 'rejected'), 0)::int AS rejected,
    coalesce(sum(s.iou_sum) FILTER (WHERE s.verdict <> '') / nullif(sum(s.iou_n) FILTER (WHERE s.verdict <> ''), 0), 0)::float8 AS mean_iou
FROM proposal_summary_parts s
JOIN models m ON m.id = s.model_id
JOIN labels l ON l.id = s.label_id
GROUP BY m.name, m.version, l.name
HAVING sum(s.n) > 0
ORDER BY m.name, m.version, l.name;

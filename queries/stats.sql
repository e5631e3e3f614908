-- name: ModelQuality :many
-- How reviewers judged each model version's proposals, per label (the label
-- the model proposed). mean_iou is over the reviewed proposals: the IoU
-- between a kept proposal and the final mask, a rejected one counting 0.
SELECT m.name AS model_name, m.version AS model_version, l.name AS label,
    count(p.id)::int AS proposals,
    count(v.proposal_id) FILTER (WHERE v.verdict = 'accepted')::int AS accepted,
    count(v.proposal_id) FILTER (WHERE v.verdict = 'corrected')::int AS corrected,
    count(v.proposal_id) FILTER (WHERE v.verdict = 'rejected')::int AS rejected,
    coalesce(avg(CASE WHEN v.verdict = 'rejected' THEN 0 ELSE a.iou END) FILTER (WHERE v.proposal_id IS NOT NULL), 0)::float8 AS mean_iou
FROM proposals p
JOIN models m ON m.id = p.model_id
JOIN labels l ON l.id = p.label_id
LEFT JOIN proposal_verdicts v ON v.proposal_id = p.id
LEFT JOIN annotations a ON a.proposal_id = p.id AND a.review_item_id = v.review_item_id
GROUP BY m.name, m.version, l.name
ORDER BY m.name, m.version, l.name;

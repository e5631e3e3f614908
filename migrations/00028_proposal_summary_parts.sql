-- +goose Up

-- The rows of proposal_summary and its deltas, not grouped. The insights
-- readers sum them straight into what they show: proposal_summary_now first
-- groups every (model, label, final label, verdict), some 13,000 rows once
-- the label pairs fill, which cost as much as the reading itself (and
-- spilled to disk at the default work_mem). A sum of sums is the same sum.
CREATE VIEW proposal_summary_parts AS
SELECT model_id, label_id, final_label_id, verdict, n, iou_sum, iou_n FROM proposal_summary
UNION ALL
SELECT model_id, label_id, final_label_id, verdict, n, iou_sum, iou_n FROM proposal_summary_deltas;

-- +goose Down
DROP VIEW proposal_summary_parts;

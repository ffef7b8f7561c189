-- Review feedback (issue #15): what people say on a task's pull request in Gitea. A review that
-- requests changes, a review comment or a comment on the PR is kept here until the task's merge
-- stage sends it back to development with it (applied_at), so a merge in progress is never
-- overtaken by a webhook; an approval is recorded as applied at once. One row per delivery: a
-- delivery processed twice adds nothing.
CREATE TABLE task_feedback (
    id          bigserial PRIMARY KEY,
    task_id     bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    source      text NOT NULL CHECK (source IN ('gitea_review', 'gitea_comment')),
    kind        text NOT NULL CHECK (kind IN ('changes_requested', 'comment', 'approved')),
    author      text,
    body        text NOT NULL,
    pr_number   integer,
    delivery_id bigint UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    applied_at  timestamptz
);
CREATE INDEX task_feedback_pending_idx ON task_feedback (task_id) WHERE applied_at IS NULL;
COMMENT ON TABLE task_feedback IS 'Reviews and comments on a task''s pull request, from Gitea webhooks; pending ones send the task back to development at its merge stage.';
COMMENT ON COLUMN task_feedback.id IS 'Row id, in arrival order.';
COMMENT ON COLUMN task_feedback.task_id IS 'The task whose pull request it is about.';
COMMENT ON COLUMN task_feedback.source IS 'gitea_review (pull_request_approved, _rejected, _comment) or gitea_comment (issue_comment on the PR).';
COMMENT ON COLUMN task_feedback.kind IS 'changes_requested, comment or approved.';
COMMENT ON COLUMN task_feedback.author IS 'Who wrote it: Gitea login and email as the webhook named them.';
COMMENT ON COLUMN task_feedback.body IS 'The review or comment text, as the development stage gets it.';
COMMENT ON COLUMN task_feedback.pr_number IS 'The pull request number in the task''s repository.';
COMMENT ON COLUMN task_feedback.delivery_id IS 'The webhook delivery it came from (webhook_deliveries.id): one row per delivery.';
COMMENT ON COLUMN task_feedback.created_at IS 'When it was recorded.';
COMMENT ON COLUMN task_feedback.applied_at IS 'When the merge stage sent the task back to development with it (an approval: when recorded); NULL while pending.';

-- /agent <text> while an agent stage runs (issue #15): the text is kept in task_feedback
-- (source plane_agent) until the running stage's job ends, which then runs the stage again with it.
ALTER TABLE task_feedback DROP CONSTRAINT task_feedback_source_check;
ALTER TABLE task_feedback ADD CONSTRAINT task_feedback_source_check
    CHECK (source IN ('gitea_review', 'gitea_comment', 'plane_agent'));
COMMENT ON COLUMN task_feedback.source IS 'gitea_review (pull_request_approved, _rejected, _comment), gitea_comment (issue_comment on the PR) or plane_agent (a /agent comment while an agent stage ran).';

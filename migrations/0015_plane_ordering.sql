-- Ordered Plane work-item updates, and one task per Plane issue (issue #10).

-- Plane's updated_at of the newest issue delivery applied to the task: an older delivery arriving
-- late (or replayed) is ignored, so title, description, labels and auto never regress.
ALTER TABLE tasks ADD COLUMN plane_updated_at timestamptz;
COMMENT ON COLUMN tasks.plane_updated_at IS 'updated_at of the newest Plane issue delivery applied to the task (older ones are ignored).';

-- Two tasks must never answer to one Plane issue. A database from before this migration may hold
-- such pairs (a project key changed, say): the oldest task (lowest id) keeps the link, the others
-- lose it (plane_issue_id NULL) and keep their history; Plane events and comments then reach only
-- the oldest. Nothing else about those tasks changes.
UPDATE tasks AS t SET plane_issue_id = NULL
WHERE t.plane_issue_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM tasks AS o WHERE o.plane_issue_id = t.plane_issue_id AND o.id < t.id);

CREATE UNIQUE INDEX tasks_plane_issue_id_key ON tasks (plane_issue_id) WHERE plane_issue_id IS NOT NULL;

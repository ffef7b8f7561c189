-- Tasks (one per Plane work item) and their append-only history (DESIGN §7).

CREATE TABLE tasks (
    id              bigserial PRIMARY KEY,
    work_item       text NOT NULL UNIQUE,              -- '<PROJECT>-<sequence_id>', e.g. ORCH-98
    plane_issue_id  text,                              -- Plane's issue uuid
    plane_project_id text,
    repo            text,                              -- Gitea owner/name
    title           text NOT NULL DEFAULT '',
    description     text NOT NULL DEFAULT '',
    labels          text[] NOT NULL DEFAULT '{}',
    plane_state     text,                              -- Plane's state name, kept current
    stage           text NOT NULL DEFAULT 'analysis'
                    CHECK (stage IN ('analysis', 'architecture', 'development', 'review', 'merge', 'deploy', 'done')),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'awaiting_approval', 'blocked', 'waiting', 'held', 'cancelled', 'failed', 'done')),
    track           text NOT NULL DEFAULT 'full' CHECK (track IN ('full', 'bug')),
    auto            boolean NOT NULL DEFAULT false,
    branch          text,
    pr_number       integer,
    head_sha        text,
    merge_sha       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tasks IS 'One task per Plane work item; stage/status change only through the state machine, each change logged in task_events.';
CREATE INDEX tasks_status_idx ON tasks (status, updated_at DESC);
CREATE INDEX tasks_head_sha_idx ON tasks (head_sha) WHERE head_sha IS NOT NULL;
CREATE INDEX tasks_merge_sha_idx ON tasks (merge_sha) WHERE merge_sha IS NOT NULL;

CREATE TABLE task_events (
    id          bigserial PRIMARY KEY,
    task_id     bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    event       text NOT NULL,                          -- the state-machine event, e.g. stage_passed
    from_stage  text NOT NULL,
    to_stage    text NOT NULL,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    reason      text,
    actor       text NOT NULL,                          -- 'system', 'plane:<user>', 'admin', …
    at          timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE task_events IS 'Append-only history of task stage/status changes.';
CREATE INDEX task_events_task_idx ON task_events (task_id, id);

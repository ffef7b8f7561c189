-- Task dependencies (issue #12): "Depends on X" / "Blocked by X" lines of a work item's
-- description (source 'description', kept in step when it changes) and edges added through
-- POST /tasks/{wi}/dependencies (source 'api'). depends_on may name a work item with no task
-- yet: the dependent waits for it. An edge that would close a cycle is never stored; it is
-- recorded in task_dependency_refusals instead.
CREATE TABLE task_dependencies (
    work_item   text NOT NULL,
    depends_on  text NOT NULL CHECK (depends_on <> work_item),
    source      text NOT NULL CHECK (source IN ('description', 'api')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (work_item, depends_on)
);
CREATE INDEX task_dependencies_depends_on_idx ON task_dependencies (depends_on);
COMMENT ON TABLE task_dependencies IS 'work_item starts only once every depends_on task is done.';

CREATE TABLE task_dependency_refusals (
    id          bigserial PRIMARY KEY,
    work_item   text NOT NULL,
    depends_on  text NOT NULL,
    source      text NOT NULL,
    cycle       text[] NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE task_dependency_refusals IS 'Edges refused because they would close a cycle (the cycle as work items).';

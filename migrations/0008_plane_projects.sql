-- Plane project uuid → identifier (the `ORCH` of `ORCH-98`), looked up through the Plane API for
-- repositories configured without plane_project_id, and shared by every replica so each project
-- is fetched once.

CREATE TABLE plane_projects (
    project_id  text PRIMARY KEY,          -- Plane's project uuid (webhook data.project)
    identifier  text NOT NULL,             -- Plane's project identifier, e.g. ORCH
    name        text,
    fetched_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE plane_projects IS 'Cache of Plane project identifiers fetched from the Plane API.';

-- The file-ownership check (issue #13): each replica scans its ORCH_WORKDIR, bounded, for entries
-- not owned by the service's user (a deployment that once ran as root, a restore, a manual git
-- command as another user) and keeps its last scan here, one row per host and work dir, so any
-- replica's GET /queue shows every host's (fs_ownership block).
CREATE TABLE fs_ownership (
    host           text NOT NULL,
    workdir        text NOT NULL,
    replica_id     text NOT NULL,
    uid            bigint NOT NULL,
    gid            bigint NOT NULL,
    scanned        integer NOT NULL,
    mismatched     integer NOT NULL,
    agent_owned    integer NOT NULL DEFAULT 0,
    unreadable     integer NOT NULL DEFAULT 0,
    truncated      boolean NOT NULL DEFAULT false,
    max_entries    integer NOT NULL,
    samples        jsonb NOT NULL DEFAULT '[]',
    healing        text,
    scanned_at     timestamptz NOT NULL,
    duration_ms    bigint NOT NULL,
    last_error     text,
    normalized     integer,
    normalized_at  timestamptz,
    PRIMARY KEY (host, workdir)
);
COMMENT ON TABLE fs_ownership IS 'Last file-ownership scan of ORCH_WORKDIR per host: entries not owned by the service''s uid, and the command that heals them.';
COMMENT ON COLUMN fs_ownership.host IS 'Host of the replica that scanned (the work dir is per host).';
COMMENT ON COLUMN fs_ownership.workdir IS 'The scanned ORCH_WORKDIR.';
COMMENT ON COLUMN fs_ownership.replica_id IS 'Replica that took the last scan.';
COMMENT ON COLUMN fs_ownership.uid IS 'The owner expected: the service''s effective uid.';
COMMENT ON COLUMN fs_ownership.gid IS 'The service''s effective gid (the group the healing command gives).';
COMMENT ON COLUMN fs_ownership.scanned IS 'Entries examined (lstat, links not followed), at most max_entries.';
COMMENT ON COLUMN fs_ownership.mismatched IS 'Entries owned by neither the service''s uid nor an agent''s configured user.';
COMMENT ON COLUMN fs_ownership.agent_owned IS 'Entries owned by an agent''s configured user (agents.<role>.user): expected, a worktree or home handed to it.';
COMMENT ON COLUMN fs_ownership.unreadable IS 'Directories the scan could not open (their contents were not examined).';
COMMENT ON COLUMN fs_ownership.truncated IS 'The scan stopped at max_entries (or at its depth limit) before the end of the tree.';
COMMENT ON COLUMN fs_ownership.max_entries IS 'ORCH_FS_NORMALIZE_MAX_ENTRIES in force: the bound of one scan.';
COMMENT ON COLUMN fs_ownership.samples IS 'A few mismatched entries: [{path, uid, gid}].';
COMMENT ON COLUMN fs_ownership.healing IS 'The command that gives the work dir back to the service''s user; NULL when nothing is mismatched.';
COMMENT ON COLUMN fs_ownership.scanned_at IS 'When the last scan was taken (the replica''s clock).';
COMMENT ON COLUMN fs_ownership.duration_ms IS 'How long the last scan took.';
COMMENT ON COLUMN fs_ownership.last_error IS 'Why the work dir could not be scanned at all; NULL when it could.';
COMMENT ON COLUMN fs_ownership.normalized IS 'Entries the last opt-in chown (ORCH_FS_NORMALIZE_CHOWN) gave back to the service''s user; NULL when it never ran here.';
COMMENT ON COLUMN fs_ownership.normalized_at IS 'When that chown ran.';

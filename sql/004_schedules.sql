-- When each maintenance job (cleanup, retry_failed) last ran. The daemon locks a job's row while
-- it runs the job, so with several workers on one database a scheduled run happens once;
-- last_run_at is the scheduled fire time that run was for, not the wall-clock time.
CREATE TABLE IF NOT EXISTS embedworker_schedules (
    name text PRIMARY KEY,
    last_run_at timestamptz,
    last_result text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

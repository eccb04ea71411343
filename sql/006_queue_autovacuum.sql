-- The queue is a hot table: every item is inserted, claimed, finished and later deleted, so it
-- piles up dead rows at thousands per second while a backlog drains. The default autovacuum
-- waits for 20 % of the table to be dead; these settings vacuum and analyze it after about 1 %
-- (and 1,000 rows), which keeps the claim index small and the planner's row counts current.
-- A setting the table already has (an operator's own choice) is left as it is; where the
-- migrating role does not own the table, or the server lacks a setting, a NOTICE says so.
DO $$
DECLARE
    wanted text[] := ARRAY[
        'autovacuum_vacuum_scale_factor=0.01',
        'autovacuum_vacuum_threshold=1000',
        'autovacuum_vacuum_insert_scale_factor=0.05',
        'autovacuum_analyze_scale_factor=0.02',
        'autovacuum_analyze_threshold=1000'
    ];
    setting text;
    existing text[];
BEGIN
    SELECT coalesce(reloptions, '{}') INTO existing
    FROM pg_class WHERE oid = 'embedding_queue'::regclass;
    FOREACH setting IN ARRAY wanted LOOP
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM unnest(existing) AS e(option)
            WHERE split_part(e.option, '=', 1) = split_part(setting, '=', 1)
        );
        BEGIN
            EXECUTE format('ALTER TABLE embedding_queue SET (%s)', setting);
        EXCEPTION WHEN insufficient_privilege OR invalid_parameter_value THEN
            RAISE NOTICE 'embedworker: embedding_queue keeps its %: %',
                split_part(setting, '=', 1), SQLERRM;
        END;
    END LOOP;
END
$$;

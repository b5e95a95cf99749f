-- The claim joins pfa_write_queue_claimable's rows back to the queue by id. At the default
-- estimate of 1,000 rows for a set-returning function the planner hashed the whole queue for
-- every claim (a sequential scan of every organization's items, ~10 ms per claim at 20,000
-- items); a claim returns at most its batch, 100 by default, which makes it 100 lookups by
-- primary key.
ALTER FUNCTION pfa_write_queue_claimable(uuid, int) ROWS 100;

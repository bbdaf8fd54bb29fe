"""Analysis inside the TRE, the adapters: the workspace's folders, confined DuckDB queries,
the bubblewrap sandbox that runs jobs and airlock checks, and ACRO's runner."""

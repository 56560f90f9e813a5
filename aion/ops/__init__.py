"""Operations: the job runner, backups and restore, the log store and retention, ClickHouse export."""

-- AION Control analytics database (apply the files in name order):
--   for f in bigdata/sql/0*.sql; do clickhouse-client -n < "$f"; done
CREATE DATABASE IF NOT EXISTS aion;

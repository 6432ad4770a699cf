-- Runs once, when the postgres volume is first initialised (the official image only executes
-- /docker-entrypoint-initdb.d on an empty data directory). The warehouse database `chiso`
-- already exists at that point because POSTGRES_DB creates it; this adds the databases of the
-- other two tenants of the same server. They are owned by the superuser POSTGRES_USER (chiso).
CREATE DATABASE airflow;
CREATE DATABASE metabase;

-- One database per plugmesh process: their event tables (plugmesh_outbox, plugmesh_inbox)
-- share names, so two processes must never share a database. Run once by the postgres
-- image on an empty volume (compose.yaml mounts it into /docker-entrypoint-initdb.d).
CREATE DATABASE registry OWNER plugmesh;
CREATE DATABASE users OWNER plugmesh;
CREATE DATABASE audit OWNER plugmesh;
CREATE DATABASE machine_users OWNER plugmesh;

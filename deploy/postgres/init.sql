-- One database per plugmesh process, so each owns its tables: the event tables
-- (plugmesh_outbox, plugmesh_inbox) have the same names in every process, and one
-- process's outbox relay would otherwise publish another's events. Run once by the
-- postgres image on an empty volume (compose.yaml mounts it into /docker-entrypoint-initdb.d).
CREATE DATABASE registry OWNER plugmesh;
CREATE DATABASE users OWNER plugmesh;
CREATE DATABASE audit OWNER plugmesh;
CREATE DATABASE machine_users OWNER plugmesh;
CREATE DATABASE gateway OWNER plugmesh;
CREATE DATABASE tool_pins OWNER plugmesh;

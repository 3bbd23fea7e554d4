"""The ``plugmesh`` command: runs the mesh's processes; no process imports it.

Modules: :mod:`~launcher.cli` (the command and its arguments); :mod:`~launcher.up` (the
whole mesh on one machine, started in order by :mod:`~launcher.startup`);
:mod:`~launcher.supervisor` (child processes, restarted when they die);
:mod:`~launcher.natsd` (the embedded nats-server); :mod:`~launcher.processes` (the table
of processes and of every ``PLUGMESH_`` variable); :mod:`~launcher.addresses`
(``host:port`` and free ports); :mod:`~launcher.state` (``up.json`` and the secret);
:mod:`~launcher.status`, :mod:`~launcher.health`, :mod:`~launcher.events` and
:mod:`~launcher.migrate` (the other commands).
"""

"""The plugmesh gateway: every registered plugin over HTTP/JSON and over native gRPC.

Modules:

- :mod:`gateway.catalog` — the registry's services, methods and instances, kept current
  by its watch stream (:mod:`gateway.model` holds the snapshot types,
  :mod:`gateway.schemas` one descriptor pool per schema digest);
- :mod:`gateway.upstream` — bytes-level calls to the instances: round-robin over SERVING
  ones, a retry of safe calls (:mod:`meshkit.channels` keeps a channel per instance,
  :mod:`gateway.metadata` says which metadata crosses);
- :mod:`gateway.ingress` — the gRPC port: a proxy for any registered method, aggregated
  reflection (:mod:`gateway.reflection`) and health (:mod:`gateway.health`);
- :mod:`gateway.http` — the HTTP/JSON port (``google.api.http`` transcoding, OpenAPI);
- :mod:`gateway.app` — the process wiring them together; :mod:`gateway.config` its
  settings; ``python -m gateway`` runs it.
"""

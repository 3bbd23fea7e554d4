"""The live console in the browser, at ``/console`` on the gateway's HTTP port.

::

    console = Console(catalog, auth.http, NatsEvents(nats_url), leases=Leases(registry))
    build_app(..., console=console)
    console.drain()                   # at shutdown: ends the live feeds
    await console.close()             # then: the leases' watch and the NATS connection

The page and its assets are hand-written ES modules and CSS in ``static/``, shipped with
the package and served from memory (:mod:`~gateway.console.assets`); the page calls the
gateway's own HTTP/JSON API for everything that API has, with the signed-in caller's
bearer token. What the API lacks lives here (:mod:`~gateway.console.endpoint`): who the
caller is, the mesh as a live feed (Server-Sent Events fed by the registry's watch,
:mod:`~gateway.console.mesh`, its leases by a watch that hears renewals,
:mod:`~gateway.console.leases`), the route table with each route's access
(:mod:`~gateway.console.routes`), and for admins the events as they are published and
the dead letters with replay (:mod:`~gateway.console.events`).
"""

from __future__ import annotations

from gateway.console.endpoint import PREFIX, Console
from gateway.console.events import NatsEvents
from gateway.console.leases import Leases

__all__ = ["PREFIX", "Console", "Leases", "NatsEvents"]

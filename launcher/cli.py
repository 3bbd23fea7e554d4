"""The ``plugmesh`` command.

- ``plugmesh up [--data-dir DIR] [--verbose]``: the whole mesh on this machine, supervised:
  the embedded nats-server (unless ``PLUGMESH_NATS_URL`` is set), the registry, the
  gateway and the plugins, each its own process with its log in ``<data dir>/logs/``.
  Restarts a process that dies; Ctrl-C or SIGTERM stops everything.
- ``plugmesh status [--registry ADDRESS] [-o table|json]``: the registry's view; exit
  code 1 when the registry cannot be reached.
- ``plugmesh config [-o table|json]``: the effective settings, each from the environment
  or its default, secrets masked.
- ``plugmesh --version``: the installed package's version, the one the gateway reports.
- ``plugmesh serve <name>``: one process in the foreground (compose, Kubernetes).
- ``plugmesh health <name>``: one gRPC health check of a process; exit code 0 when
  SERVING (a container's health check).
- ``plugmesh admin-token``: the bootstrap admin's token, as ``plugmesh up`` makes it, for
  a mesh that runs without ``up`` (containers): printed once, kept in the data dir.
- ``plugmesh events tail [PATTERN]``: events as they flow (type, source, subject, payload).
- ``plugmesh events dlq [--replay ID]``: the dead letters; replays one.
- ``plugmesh migrate [NAME ...] [--check]``: the named processes' databases (default: all)
  to their newest schema revision (each process also does so at start); ``--check`` only
  reports, exit code 1 when one is behind.

Configuration comes from ``PLUGMESH_`` environment variables, listed in
:data:`launcher.processes.ENVIRONMENT` and at the end of ``plugmesh --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from launcher.addresses import split_address
from launcher.output import OUTPUT_FORMATS
from launcher.processes import ENVIRONMENT, NATS, PROCESSES, process_named, process_names
from meshkit.config import DEFAULT_NATS_ADDRESS, DEFAULT_REGISTRY_ADDRESS, ConfigError
from meshkit.version import package_version

if TYPE_CHECKING:
    from meshkit.tls_settings import MeshTls

__all__ = ["build_parser", "main", "registry_address"]

_DATABASE_PROCESSES = tuple(spec.name for spec in PROCESSES if spec.uses_database)


def _environment_epilog() -> str:
    width = max(len(v.name) for v in ENVIRONMENT)
    lines = ["environment (defaults in brackets):"]
    lines += [f"  {v.name:<{width}}  [{v.default}] {v.description}" for v in ENVIRONMENT]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``plugmesh``."""
    parser = argparse.ArgumentParser(
        prog="plugmesh",
        description="Run and inspect a plugmesh gRPC service mesh.",
        epilog=_environment_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"plugmesh {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start the whole mesh and supervise it")
    up.add_argument("--data-dir", help="state directory (default: $PLUGMESH_DATA_DIR)")
    up.add_argument("-v", "--verbose", action="store_true", help="echo every process's log lines")

    status = commands.add_parser("status", help="print the registry's view of the mesh")
    status.add_argument(
        "--registry",
        metavar="ADDRESS",
        help="registry address (default: $PLUGMESH_REGISTRY_ADDRESS, or the one "
        "`plugmesh up` uses in the data dir)",
    )
    status.add_argument("--data-dir", help="state directory (default: $PLUGMESH_DATA_DIR)")
    status.add_argument(
        "--timeout", type=float, default=3.0, metavar="SECONDS", help="how long to wait"
    )
    _add_output(status)

    config = commands.add_parser(
        "config", help="print the effective settings and where each came from, secrets masked"
    )
    _add_output(config)

    serve = commands.add_parser("serve", help="run one process in the foreground")
    serve.add_argument("name", choices=process_names(), help="the process to run")

    health = commands.add_parser(
        "health", help="check one process's gRPC health; exit code 0 when SERVING"
    )
    health.add_argument("name", choices=[p.name for p in PROCESSES], help="the process to check")
    health.add_argument(
        "--address",
        help="where it serves (default: its address variable; 0.0.0.0 is dialled on loopback)",
    )
    health.add_argument(
        "--service", default="", help="the gRPC service to ask about (default: the server)"
    )
    health.add_argument(
        "--timeout", type=float, default=3.0, metavar="SECONDS", help="how long to wait"
    )

    admin = commands.add_parser(
        "admin-token",
        help="make the bootstrap admin's token (as `plugmesh up` does); printed once",
    )
    admin.add_argument(
        "--address",
        help="the machine-users service (default: $PLUGMESH_MACHINE_USERS_ADDRESS; 0.0.0.0 is"
        " dialled on loopback)",
    )
    admin.add_argument("--data-dir", help="where admin.token is kept (default: $PLUGMESH_DATA_DIR)")

    events = commands.add_parser("events", help="watch events and dead letters")
    actions = events.add_subparsers(dest="action", required=True, metavar="ACTION")
    tail = actions.add_parser("tail", help="print events as they flow")
    tail.add_argument(
        "pattern", nargs="?", default=">", help="event types, e.g. user.* (default: all)"
    )
    tail.add_argument("--count", type=int, metavar="N", help="stop after N events")
    tail.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds")
    dlq = actions.add_parser("dlq", help="list dead letters, or replay one")
    dlq.add_argument(
        "--replay", metavar="ID", help="republish the dead letter with this sequence or event id"
    )
    dlq.add_argument("--limit", type=int, default=100, metavar="N", help="list at most N")
    migrate = commands.add_parser("migrate", help="bring databases to their newest schema")
    migrate.add_argument(
        "names",
        nargs="*",
        choices=_DATABASE_PROCESSES,
        metavar="NAME",
        help=f"processes whose database to migrate: {', '.join(_DATABASE_PROCESSES)} "
        "(default: all)",
    )
    migrate.add_argument(
        "--check", action="store_true", help="change nothing; exit code 1 when one is behind"
    )
    migrate.add_argument("--data-dir", help="state directory (default: $PLUGMESH_DATA_DIR)")
    for action in (tail, dlq):
        action.add_argument("--nats", metavar="URL", help="NATS URL (default: $PLUGMESH_NATS_URL)")
        action.add_argument("--data-dir", help="state directory (default: $PLUGMESH_DATA_DIR)")
    return parser


def _add_output(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default=OUTPUT_FORMATS[0],
        help="table for people (default) or one JSON document for scripts",
    )


def _data_dir(flag: str | None, env: Mapping[str, str]) -> Path:
    return Path(flag or env.get("PLUGMESH_DATA_DIR") or ".plugmesh")


def registry_address(flag: str | None, data_dir: Path, env: Mapping[str, str]) -> str:
    """The registry to ask: the flag, else the environment, else the one ``up`` runs."""
    if flag:
        return flag
    configured = env.get("PLUGMESH_REGISTRY_ADDRESS")
    if configured and not configured.endswith(":0"):
        return configured
    from launcher.state import read_state

    state = read_state(data_dir)
    if state is not None:
        address = state.get("addresses", {}).get("PLUGMESH_REGISTRY_ADDRESS")
        if isinstance(address, str):
            return address
    return DEFAULT_REGISTRY_ADDRESS


def _mesh_tls(data_dir: Path, env: Mapping[str, str]) -> MeshTls | None:
    """The certificate to call the mesh with: ``PLUGMESH_TLS_*`` when set, else the one
    ``plugmesh up`` made for itself in the data dir, else none (plaintext)."""
    from launcher.certs import LAUNCHER_IDENTITY, TLS_DIR
    from meshkit.tls_settings import MeshTls

    configured = MeshTls.from_env(env)
    if configured is not None:
        return configured
    from launcher.state import read_state

    state = read_state(data_dir)
    if state is not None and not state.get("mesh_tls", True):
        return None  # `plugmesh up` runs in plaintext (PLUGMESH_MESH_TLS=off)
    directory = data_dir / TLS_DIR
    files = [directory / f"{LAUNCHER_IDENTITY}.{ext}" for ext in ("crt", "key")]
    if not all(path.is_file() for path in (*files, directory / "ca.crt")):
        return None
    return MeshTls(files[0], files[1], directory / "ca.crt")


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("plugmesh: %(message)s"))
    # The supervisor's messages, and the toolkit's from the calls `up` makes itself.
    for name in ("launcher", "meshkit"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
        logger.propagate = False


def _up(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from launcher.up import UpSettings, run_up

    _configure_logging(args.verbose)
    settings = UpSettings.from_env(env, data_dir=args.data_dir, verbose=args.verbose)
    return asyncio.run(run_up(settings, sys.stdout))


def _status(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from launcher.status import print_status

    data_dir = _data_dir(args.data_dir, env)
    address = registry_address(args.registry, data_dir, env)
    secret = _registration_secret(data_dir, env)
    tls = _mesh_tls(data_dir, env)
    return asyncio.run(
        print_status(
            address, sys.stdout, sys.stderr, args.timeout, args.output, secret=secret, tls=tls
        )
    )


def _config(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from launcher.settings_report import print_settings

    return print_settings(env, sys.stdout, args.output)


def _health(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from launcher.health import check_health, dial_address

    address = args.address or dial_address(args.name, env)
    # The gateway's gRPC port is its front door, not a mesh port: no client certificate.
    tls = None if args.name == "gateway" else _mesh_tls(_data_dir(None, env), env)
    return asyncio.run(
        check_health(address, args.service, args.timeout, sys.stdout, sys.stderr, tls)
    )


def _admin_token(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from launcher.health import dial_address
    from services.machineusers.bootstrap import BootstrapError, ensure_admin

    data_dir = _data_dir(args.data_dir, env)
    secret = _registration_secret(data_dir, env)
    if not secret:
        print("plugmesh: PLUGMESH_REGISTRATION_SECRET is not set", file=sys.stderr)
        return 2
    address = args.address or dial_address("machine-users", env)
    try:
        admin = asyncio.run(ensure_admin(data_dir, address, secret, tls=_mesh_tls(data_dir, env)))
    except BootstrapError as exc:
        print(f"plugmesh: {exc}", file=sys.stderr)
        return 1
    if admin.created:
        print(f"admin token (shown once; kept in {admin.path}): {admin.token}")
    else:
        print(f"admin token: {admin.path}")
    return 0


def _events(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from launcher import events

    data_dir = _data_dir(args.data_dir, env)
    url = events.nats_url(args.nats, data_dir, env)
    # The mesh's certificate for the NATS `plugmesh up` runs, not for an external one.
    external = args.nats or env.get("PLUGMESH_NATS_URL") or env.get("PLUGMESH_NATS_TLS") == "off"
    tls = None if external else _mesh_tls(data_dir, env)
    if args.action == "tail":
        return asyncio.run(
            events.tail(
                url,
                args.pattern,
                sys.stdout,
                sys.stderr,
                count=args.count,
                duration_seconds=args.seconds,
                tls=tls,
            )
        )
    if args.replay:
        return asyncio.run(events.replay(url, args.replay, sys.stdout, sys.stderr, tls=tls))
    return asyncio.run(
        events.print_dead_letters(url, sys.stdout, sys.stderr, limit=args.limit, tls=tls)
    )


def _registration_secret(data_dir: Path, env: Mapping[str, str]) -> str | None:
    """The environment's registration secret, else the one ``plugmesh up`` keeps."""
    secret_file = data_dir / "registration.secret"
    if env.get("PLUGMESH_REGISTRATION_SECRET"):
        return env["PLUGMESH_REGISTRATION_SECRET"]
    return secret_file.read_text().strip() if secret_file.is_file() else None


def _migrate(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from launcher.migrate import migrate

    env = {**env, "PLUGMESH_DATA_DIR": str(_data_dir(args.data_dir, env))}
    return asyncio.run(migrate(env, sys.stdout, args.names, check=args.check))


def _serve(name: str, env: Mapping[str, str]) -> int:
    data_dir = _data_dir(None, env)
    if name == NATS:
        from launcher.natsd import exec_nats_server

        host, port = split_address(env.get("PLUGMESH_NATS_ADDRESS") or DEFAULT_NATS_ADDRESS)
        exec_nats_server(data_dir / "jetstream", host=host, port=port)
    secret = _registration_secret(data_dir, env)
    if secret and not env.get("PLUGMESH_REGISTRATION_SECRET"):
        # Lets a process started by hand join a mesh that `plugmesh up` runs.
        os.environ["PLUGMESH_REGISTRATION_SECRET"] = secret
    module_name = process_named(name).module + ".__main__"
    module = importlib.import_module(module_name)
    entry = getattr(module, "main", None)
    if not callable(entry):
        print(f"plugmesh: {module_name} has no main()", file=sys.stderr)
        return 2
    result = entry()
    if inspect.isawaitable(result):
        result = asyncio.run(result)  # type: ignore[arg-type]  # an awaitable main()
    return result if isinstance(result, int) else 0


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    commands = {
        "up": _up,
        "status": _status,
        "config": _config,
        "events": _events,
        "migrate": _migrate,
        "health": _health,
        "admin-token": _admin_token,
    }
    command = commands.get(args.command)
    return command(args, env) if command is not None else _serve(args.name, env)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``plugmesh`` with ``argv`` (default: the command line); return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code = _run(args, os.environ)
        # A reader that went away must show up here, not in the flush at exit.
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        # A setting that cannot be used (PLUGMESH_MESH_TLS, the PLUGMESH_TLS_* files).
        print(f"plugmesh: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `plugmesh status -o json | head`: the reader left. End as a tool killed by
        # SIGPIPE does, without the traceback (and the second one at exit) Python prints.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

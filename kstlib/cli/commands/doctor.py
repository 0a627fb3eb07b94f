"""``kstlib ops doctor``: prints what :func:`kstlib.ops.doctor.doctor`'s probes find.

The probes are the library's (:mod:`kstlib.ops.doctor`); this command adds
what is the CLI's: the config file (valid or not, ports it publishes on every
interface), and leaving out an ssh:// engine of a project-local config file.

Example:
    >>> check = probe_tmux(tmux_bin="/no/such/tmux")
    >>> check.available, check.backend
    (False, 'tmux')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kstlib.cli import output
from kstlib.ops import validators
from kstlib.ops.config import OpsConfig
from kstlib.ops.doctor import (
    TIMEOUT,
    Check,
    network_notes,
    probe_docker,
    probe_engines,
    probe_podman,
    probe_tmux,
    reason,
)
from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.models import BackendType

if TYPE_CHECKING:
    from kstlib.cli.context import Context

__all__ = ["cmd_doctor", "probe_docker", "probe_podman", "probe_tmux", "reason"]


def _probe_named(ctx: Context, config: OpsConfig, timeout: float) -> list[Check]:
    """Every named engine at once, but an ssh:// engine of a project-local file is not reached."""
    skipped: dict[str, Check] = {}
    asked = []
    for engine in config.engines.values():
        if config.untrusted_endpoint(engine.base_url):
            # a host a file from the current folder chose (ssh would run for an ssh:// one)
            from kstlib.ops.config import how_to_trust

            skipped[engine.name] = Check(
                f"engine {engine.name}",
                False,
                None,
                engine.base_url or "-",
                "not probed: a remote engine named only by a project-local config file",
                how_to_trust(config),
            )
        else:
            asked.append(engine)
    found = probe_engines(asked, timeout, ctx.tmux_binary()) if asked else {}
    checks = {**skipped, **found}
    return [checks[name] for name in config.engines if name in checks]


def cmd_doctor(ctx: Context) -> int:
    """``kstlib ops doctor``: each backend, usable or not, and what to do about it.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "doctor", "-q"]) in (0, 1)
        True
    """
    config_info: dict[str, Any] = {"path": None, "valid": True, "error": None, "sessions": 0}
    try:
        config = ctx.config
        config_info.update(
            path=str(config.path) if config.path else None, sessions=len(config.sessions)
        )
        if ctx.invalid_sessions:
            config_info.update(
                valid=False, error="; ".join(str(e) for e in ctx.invalid_sessions.values())
            )
    except SessionConfigError as err:
        config = OpsConfig()
        config_info.update(valid=False, error=str(err))
    timeout = min(float(TIMEOUT), ctx.engine_timeout)  # doctor never waits long
    checks = [
        probe_tmux(
            ctx.tmux_binary() if config_info["valid"] else None,
            ctx.option("socket") or config.tmux_socket,
        ),
        probe_docker(timeout=timeout),
        probe_podman(timeout=timeout),
    ]
    checks.extend(_probe_named(ctx, config, timeout))
    public = _public_ports(config)
    config_info["public_ports"] = public
    usable = any(c.available for c in checks)
    images = [s.image for s in config.sessions.values() if s.image]
    notes = network_notes([(c.backend, c.available, c.endpoint) for c in checks], images, timeout)
    if ctx.args.json:
        report = {"config": config_info, "backends": [c.to_dict() for c in checks]}
        output.emit(output.dumps_json({**report, "network": notes}))
    elif not ctx.args.quiet:
        rows = [
            [
                c.backend,
                "ok" if c.available else "unavailable",
                c.version or "-",
                c.endpoint,
                c.detail or "-",
            ]
            for c in checks
        ]
        output.emit(
            output.render_table(["BACKEND", "STATUS", "VERSION", "ENDPOINT", "DETAIL"], rows)
        )
        for c in checks:
            if not c.available and c.hint:
                output.emit(f"\nTo use {c.backend}: {c.hint}")
        if config_info["valid"]:
            where = config_info["path"] or "none found (optional)"
            output.emit(f"\nConfig file: {where}")
        else:
            output.emit(f"\nConfig file: invalid: {config_info['error']}")
        for name, ports in public.items():
            _, host, ctr, proto = validators.parse_port(ports[0])
            local = f"127.0.0.1:{host}:{ctr}" + ("" if proto == "tcp" else f"/{proto}")
            output.emit(
                f"\nSession {name!r} publishes {', '.join(ports)} on every network interface: "
                f"any host that can reach this machine can connect. Write {local} to keep "
                "it on this machine."
            )
        for note in notes.values():
            output.emit(f"\nNetwork: {note}.")
        count = sum(c.available for c in checks)
        output.emit(
            f"{count} of {len(checks)} backends usable."
            + ("" if usable else " Install or start one of them (see above).")
        )
    return 0 if usable else 1


def _public_ports(config: OpsConfig) -> dict[str, list[str]]:
    """The config's container sessions' port mappings that bind every interface.

    ``"8080:80"`` binds 0.0.0.0 (and ::), as ``docker run -p`` does.

    Example:
        >>> from kstlib.ops.config import parse_config
        >>> _public_ports(parse_config(
        ...     "ops: {sessions: {web: {backend: docker, image: nginx, "
        ...     "ports: ['8080:80', '127.0.0.1:8443:443']}}}", source="x.yml"))
        {'web': ['8080:80']}
    """
    out: dict[str, list[str]] = {}
    for name, session in config.sessions.items():
        if session.backend is not BackendType.CONTAINER:
            continue
        wide = [p for p in session.ports if validators.parse_port(p)[0] in (None, "0.0.0.0", "::")]
        if wide:
            out[name] = wide
    return out

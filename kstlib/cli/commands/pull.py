"""``kstlib ops pull IMAGE``: pull an image, with a progress bar on a terminal.

Example:
    >>> from kstlib.cli.parser import parse_args
    >>> parse_args(["ops", "pull", "alpine:3.19"]).image
    'alpine:3.19'
"""

from __future__ import annotations

import sys

from kstlib.cli import output
from kstlib.cli.context import Context
from kstlib.cli.places import option_error
from kstlib.ops import validators
from kstlib.ops.exceptions import (
    SessionConfigError,
)

__all__ = ["cmd_pull"]


def cmd_pull(ctx: Context) -> int:
    """``kstlib ops pull IMAGE``: pull an image, with a progress bar on a terminal.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "pull", "127.0.0.1:5000/kstlib/pulltest:1", "-q"])  # doctest: +SKIP
        0
        >>> main(["ops", "pull", "Not An Image"])
        2
    """
    from kstlib.cli.progress import terminal_progress
    from kstlib.ops.images import DEFAULT_PULL_TIMEOUT, pull_image

    args = ctx.args
    try:
        image = validators.validate_image(args.image)
    except SessionConfigError as err:
        raise option_error(err, "IMAGE") from None
    config = ctx.config
    quiet = bool(args.quiet or args.json)
    bar = None if quiet else terminal_progress(sys.stderr)
    try:
        result = pull_image(
            image,
            runtime=args.runtime or config.container_runtime,
            on_progress=bar,
            insecure_registries=config.insecure_registries,
            insecure=True if args.insecure else None,
            timeout=args.timeout if args.timeout else DEFAULT_PULL_TIMEOUT,
        )
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        output.emit(output.dumps_json(result.to_dict()))
    elif not args.quiet:
        short = (result.image_id or "").removeprefix("sha256:")[:12]
        output.emit(
            f"Pulled {result.image} on {result.runtime}" + (f" ({short})." if short else ".")
        )
    return 0

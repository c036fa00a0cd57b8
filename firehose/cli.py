"""`firehose serve` and `firehose validate`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import types
import typing
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from firehose.config_load import ConfigError, load_configs
from firehose.errors import StartError, WalError
from firehose.logs import configure_logging
from firehose.settings import ENV_PREFIX, Settings, SettingsError, load_settings

# Loggers of the AWS SDK (and the HTTP client under boto3), kept at INFO or above.
SDK_LOGGERS = ("botocore", "aiobotocore", "boto3", "s3transfer", "urllib3")


def _version() -> str:
    try:
        return version("firehose")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _option_type(annotation: Any) -> type:
    """The argparse type of a settings field: int, float or Path as declared, else str."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation if annotation in (int, float, Path) else str


def _option_help(name: str, field: FieldInfo) -> str:
    default = field.default
    shown = (
        "unset" if default is None else f"{default:g}" if isinstance(default, float) else default
    )
    text = f"{field.description or ''} (env {ENV_PREFIX}{name.upper()}, default {shown})"
    return text.replace("%", "%%")  # argparse formats help with %


def _add_settings_options(parser: argparse.ArgumentParser) -> None:
    """One option per Settings field, so the options, variables and defaults cannot drift."""
    for name, field in Settings.model_fields.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=_option_type(field.annotation),
            metavar=name.upper(),
            help=_option_help(name, field),
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="firehose", description="A self-hosted delivery pipeline speaking the Firehose API."
    )
    parser.add_argument("--version", action="version", version=f"firehose {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the service",
        description="Run the service. Every option is also an environment variable; "
        "an option given wins over its variable.",
    )
    _add_settings_options(serve)
    validate = commands.add_parser("validate", help="check config files and print each problem")
    validate.add_argument("--config", type=Path, help="a YAML file or a folder of them")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    given: dict[str, Any] = {
        key: value for key, value in vars(args).items() if key != "command" and value is not None
    }
    return load_settings(given)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except SettingsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    _quiet_sdk_debug()
    try:
        if args.command == "validate":
            from firehose.service import CONFIG_CHECKS

            streams = load_configs(settings.config, CONFIG_CHECKS)
            for stream in streams:
                print(f"{stream.name}: ok")
            return 0
        # Until the service installs its own handlers, a signal means: stop, nothing to flush.
        signal.signal(signal.SIGTERM, _exit_quietly)
        signal.signal(signal.SIGINT, _exit_quietly)
        from firehose.service import run

        return run(settings)
    except ConfigError as exc:
        for config_problem in exc.problems:
            print(config_problem, file=sys.stderr)
        return 1
    except (StartError, WalError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1


def _quiet_sdk_debug() -> None:
    """The AWS SDK's DEBUG output holds signed requests (access key ids in their headers), so
    its loggers stay at INFO even when the service's level is DEBUG."""
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logging.INFO, logger.getEffectiveLevel()))


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())

"""`firehose serve` and `firehose validate`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from firehose.config_load import ConfigError, load_configs
from firehose.errors import WalError
from firehose.settings import Settings, SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="firehose", description="A self-hosted delivery pipeline speaking the Firehose API."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--config", type=Path, help="a YAML file or a folder of them")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 4573)")
    serve.add_argument("--data-dir", type=Path, help="where the write-ahead logs live")
    serve.add_argument(
        "--s3-endpoint-url", help="send every stream here: http(s)://… or file://DIR"
    )
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
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "validate":
            streams = load_configs(settings.config)
            for stream in streams:
                print(f"{stream.name}: ok")
            return 0
        # Until the service installs its own handler, SIGTERM means: stop, nothing to flush.
        signal.signal(signal.SIGTERM, _exit_quietly)
        from firehose.service import run

        return run(settings)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except WalError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())

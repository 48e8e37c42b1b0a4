"""A stack's configuration, merged the way the Pulumi CLI merges it.

The CLI hands a program the defaults declared in `Pulumi.yaml` overlaid with the
stack file's values, every value a string (structured ones as JSON) under a
namespaced key. `pulumi.runtime.set_mocks` does none of that, so every run under
mocks (tests, the policy check, the local run) loads configuration here.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Callable

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
# libyaml's safe loader where PyYAML was built with it: the same documents, read about seven
# times faster than the pure-Python one (every run of the program reads the project file).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UserConfigError(ValueError):
    """Something the user configured (a stack file, a policy pack config) that a command cannot run with."""


class StackConfigError(UserConfigError):
    """A project or stack file that the Pulumi CLI would refuse."""


# Each project file parsed once per content: every run of the program, and every URN a test
# spells, reads it (about 2 ms a parse, some 900 in a run of the tests). Keyed by the file's
# bytes, so an edited file is parsed again.
_parsed_projects: dict[Path, tuple[bytes, dict]] = {}


def _project(project_dir: Path) -> dict:
    """The parsed project file, shared: only read it (`load_project` hands out a copy)."""
    path = project_dir / "Pulumi.yaml"
    content = path.read_bytes()
    cached = _parsed_projects.get(path)
    if cached is None or cached[0] != content:
        cached = (content, yaml.load(content.decode("utf-8"), Loader=_YAML_LOADER))
        _parsed_projects[path] = cached
    return cached[1]


def load_project(project_dir: Path = PROJECT_DIR) -> dict:
    return copy.deepcopy(_project(project_dir))


def project_name(project_dir: Path = PROJECT_DIR) -> str:
    return _project(project_dir)["name"]


def stack_names(project_dir: Path = PROJECT_DIR) -> list[str]:
    """Every stack that has a `Pulumi.<stack>.yaml` file in the project."""
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in project_dir.glob("Pulumi.*.yaml"))


def stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def _namespaced(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _as_cli_string(value: object) -> str:
    # The CLI passes strings through and JSON-encodes everything else.
    return value if isinstance(value, str) else json.dumps(value)


def load_stack_config(
    stack: str,
    project_dir: Path = PROJECT_DIR,
    overrides: dict[str, object] | None = None,
) -> dict[str, str]:
    """The `namespace:key -> string` map the CLI would give the program for `stack`.

    `overrides` (keys with or without namespace) are applied last, as
    `pulumi config set` would; tests use them to try bad values.
    """
    project = _project(project_dir)
    name = project["name"]
    config: dict[str, str] = {}
    for key, declaration in (project.get("config") or {}).items():
        if isinstance(declaration, dict) and "default" in declaration:
            config[_namespaced(key, name)] = _as_cli_string(declaration["default"])
    path = stack_file(stack, project_dir)
    if not path.exists():
        raise StackConfigError(f"no stack file {path.name}; stacks here: {', '.join(stack_names(project_dir))}")
    with open(path, encoding="utf-8") as stream:
        stack_values = (yaml.load(stream, Loader=_YAML_LOADER) or {}).get("config") or {}
    for key, value in stack_values.items():
        if isinstance(value, dict) and "secure" in value:
            raise StackConfigError(f"{path.name}: {key} is a secret; runs under mocks take no secrets")
        config[_namespaced(key, name)] = _as_cli_string(value)
    for key, value in (overrides or {}).items():
        namespaced = _namespaced(key, name)
        if value is None:
            config.pop(namespaced, None)
        else:
            config[namespaced] = _as_cli_string(value)
    return config


# The exit status of every command here when the configuration (a stack file, a policy pack
# config, an option) is wrong, as argparse uses for a bad option: 1 stays "ran, and found a problem".
CONFIG_ERROR_EXIT = 2


def config_error_message(error: BaseException) -> str | None:
    """The message of an error in what the user configured, or None for any other error.

    The program reports its configuration problems as `pulumi.RunError` (which the CLI prints
    without a traceback, see `__main__.py`); the commands here print them the same way.
    """
    from pulumi.errors import RunError

    from components.settings import ConfigError

    if isinstance(error, (UserConfigError, ConfigError)):
        return str(error)
    # `raise RunError(...) from None` hides the ConfigError from tracebacks but keeps it as context.
    if isinstance(error, RunError) and isinstance(error.__context__, ConfigError):
        return str(error)
    return None


def aws_setup_message(error: BaseException) -> tuple[str, int] | None:
    """One line for an AWS error a user fixes in their setup, with the exit status; None for others.

    Missing credentials or region are configuration (2); what AWS refuses (expired
    or unknown keys, access denied, no such table) ran and failed (1).
    """
    from botocore import exceptions

    if isinstance(error, (exceptions.NoCredentialsError, exceptions.PartialCredentialsError)):
        return ("no AWS credentials found: run `aws configure` or `aws sso login`, or set AWS_PROFILE "
                "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", CONFIG_ERROR_EXIT)
    if isinstance(error, exceptions.NoRegionError):
        return "no AWS region: pass --region, or set aws:region in the stack file", CONFIG_ERROR_EXIT
    if isinstance(error, exceptions.ClientError):
        details = error.response.get("Error", {})
        return (f"AWS refused {error.operation_name}: {details.get('Code', 'error')}: "
                f"{details.get('Message', '')}".rstrip(": "), 1)
    if isinstance(error, exceptions.EndpointConnectionError):
        return f"{error}: check --region (or aws:region in the stack file) and the network", 1
    if isinstance(error, exceptions.BotoCoreError):
        return str(error), 1
    return None


def run_command(prog: str, main: Callable[[], int]) -> int:
    """Run a command's `main`: a configuration problem, or missing AWS credentials or region, prints
    its message without a traceback and exits 2 (SystemExit, as argparse does for a bad option);
    an AWS refusal prints one line and exits 1."""
    try:
        return main()
    except Exception as error:
        message = config_error_message(error)
        status = CONFIG_ERROR_EXIT
        if message is None:
            setup = aws_setup_message(error)
            if setup is None:
                raise
            message, status = setup
        print(f"{prog}: {message}", file=sys.stderr)
        raise SystemExit(status) from None


def stack_region(stack: str, project_dir: Path = PROJECT_DIR) -> str | None:
    """The stack's `aws:region`: its stack file's, else the project's (Pulumi.yaml), else None."""
    region = load_stack_config(stack, project_dir).get("aws:region")
    declared = (_project(project_dir).get("config") or {}).get("aws:region")
    return region or (declared if isinstance(declared, str) else None)

"""A stack's configuration, merged the way the Pulumi CLI merges it.

The CLI hands a program the defaults declared in `Pulumi.yaml` overlaid with the
stack file's values, every value a string (structured ones as JSON) under a
namespaced key. `pulumi.runtime.set_mocks` does none of that, so every offline
run (tests, the policy check, the local run) loads configuration here.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent


class StackConfigError(ValueError):
    """A project or stack file that the Pulumi CLI would refuse."""


def load_project(project_dir: Path = PROJECT_DIR) -> dict:
    with open(project_dir / "Pulumi.yaml", encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def project_name(project_dir: Path = PROJECT_DIR) -> str:
    return load_project(project_dir)["name"]


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
    project = load_project(project_dir)
    name = project["name"]
    config: dict[str, str] = {}
    for key, declaration in (project.get("config") or {}).items():
        if isinstance(declaration, dict) and "default" in declaration:
            config[_namespaced(key, name)] = _as_cli_string(declaration["default"])
    path = stack_file(stack, project_dir)
    if not path.exists():
        raise StackConfigError(f"no stack file {path.name}; stacks here: {', '.join(stack_names(project_dir))}")
    with open(path, encoding="utf-8") as stream:
        stack_values = (yaml.safe_load(stream) or {}).get("config") or {}
    for key, value in stack_values.items():
        if isinstance(value, dict) and "secure" in value:
            raise StackConfigError(f"{path.name}: {key} is a secret; offline runs take no secrets")
        config[_namespaced(key, name)] = _as_cli_string(value)
    for key, value in (overrides or {}).items():
        namespaced = _namespaced(key, name)
        if value is None:
            config.pop(namespaced, None)
        else:
            config[namespaced] = _as_cli_string(value)
    return config

"""Pulumi.yaml's `config:` block and the README's configuration table, rendered from the config table.

`python -m components.config_docs` rewrites both from components/config_table.py;
tests/test_docs.py fails when either file differs from what is rendered here, so a
default or a bound changed in the table cannot be forgotten in the documents.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from components.config_table import SETTINGS, Setting

PROJECT_DIR = Path(__file__).resolve().parent.parent
README_SECTION = "## Configuration"
GENERATED_NOTE = ("  # Rendered from components/config_table.py by `python -m components.config_docs`: "
                  "change the table, then run it.\n")
# Pulumi.yaml's config schema has no object type: structured settings are listed in comments.
_PULUMI_TYPES = {"string", "integer", "boolean", "array"}


def _defaults() -> dict[str, Any]:
    """Every setting's default, as the values the documents' `allowed` texts are filled in with."""
    return {setting.key: setting.default for setting in SETTINGS if not setting.required}


# A word YAML reads as the string itself (not a number, boolean or null), so it needs no quotes.
_PLAIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*\Z")
_YAML_KEYWORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _yaml_scalar(value: Any) -> str:
    """One YAML value on one line: a plain word as is, else JSON's form, which is YAML's too."""
    if isinstance(value, str) and _PLAIN_WORD.match(value) and value.lower() not in _YAML_KEYWORDS:
        return value
    return json.dumps(value, ensure_ascii=False)


def _see(setting: Setting, *, markdown: bool) -> str:
    if setting.see is None:
        return ""
    text, link = setting.see
    if markdown:
        return f" (see [{text}]({link}))"
    return f" (see README, {text})" if link.startswith("#") else f" (see {text})"


def pulumi_description(setting: Setting) -> str:
    text = setting.description[0].upper() + setting.description[1:]
    return f"{text}; allowed: {setting.allowed_text(_defaults())}{_see(setting, markdown=False)}"


def pulumi_yaml_config() -> str:
    """The `config:` block of Pulumi.yaml, the file's last part."""
    lines = ["config:\n", GENERATED_NOTE]
    structured = []
    for setting in SETTINGS:
        if setting.provider:
            lines.append(f"  {setting.key}: {_yaml_scalar(setting.default)}\n")
            continue
        if setting.kind not in _PULUMI_TYPES:
            structured.append(setting)
            continue
        lines.append(f"  {setting.key}:\n")
        lines.append(f"    type: {setting.kind}\n")
        lines.append(f"    description: {_yaml_scalar(pulumi_description(setting))}\n")
        if setting.kind == "array":
            lines.append("    items:\n      type: string\n")
        if not setting.required:
            lines.append(f"    default: {_yaml_scalar(setting.default)}\n")
    if structured:
        lines.append("  # Structured settings (Pulumi.yaml cannot declare objects; see README, Configuration):\n")
        lines += [f"  #   {setting.key}: {setting.description}\n" for setting in structured]
    return "".join(lines)


def _readme_default(setting: Setting) -> str:
    if setting.required:
        return "required"
    if setting.shown_default:
        return setting.shown_default
    default = setting.default
    return f"`{default if isinstance(default, str) else _yaml_scalar(default)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def readme_table() -> str:
    """The README's configuration table, one row per setting."""
    rows = ["| key | default | allowed | meaning |\n", "| --- | --- | --- | --- |\n"]
    for setting in SETTINGS:
        rows.append(f"| `{setting.key}` | {_cell(_readme_default(setting))} | "
                    f"{_cell(setting.allowed_text(_defaults()))} | "
                    f"{_cell(setting.description)}{_see(setting, markdown=True)} |\n")
    return "".join(rows)


def _split_pulumi_yaml(text: str) -> tuple[str, str]:
    """(everything before the `config:` block, the block), the block being the file's end."""
    head, marker, block = text.partition("\nconfig:\n")
    if not marker:
        raise ValueError("Pulumi.yaml has no top-level `config:` block")
    return head + "\n", "config:\n" + block


def _split_readme(text: str) -> tuple[str, str, str]:
    """(before the configuration table, the table, after it)."""
    start = text.index(README_SECTION)
    table_start = text.index("\n|", start) + 1
    table_end = text.find("\n\n", table_start)
    table_end = len(text) if table_end < 0 else table_end + 1
    return text[:table_start], text[table_start:table_end], text[table_end:]


def pulumi_yaml_config_as_written(project_dir: Path = PROJECT_DIR) -> str:
    return _split_pulumi_yaml((project_dir / "Pulumi.yaml").read_text())[1]


def readme_table_as_written(project_dir: Path = PROJECT_DIR) -> str:
    return _split_readme((project_dir / "README.md").read_text())[1]


def rewrite(project_dir: Path = PROJECT_DIR) -> list[str]:
    """Render both documents into the project's files; the names of the files that changed."""
    changed = []
    pulumi_yaml = project_dir / "Pulumi.yaml"
    head, block = _split_pulumi_yaml(pulumi_yaml.read_text())
    if block != pulumi_yaml_config():
        pulumi_yaml.write_text(head + pulumi_yaml_config())
        changed.append(pulumi_yaml.name)
    readme = project_dir / "README.md"
    before, table, after = _split_readme(readme.read_text())
    if table != readme_table():
        readme.write_text(before + readme_table() + after)
        changed.append(readme.name)
    return changed


if __name__ == "__main__":
    changed = rewrite()
    print(f"rewrote {', '.join(changed)}" if changed else "Pulumi.yaml and README.md already match the table",
          file=sys.stderr)

"""The stack's configuration, read once into one typed object and validated before
any resource is declared.

What each key is, its default and what is allowed are declared in
`components/config_table.py`; this module reads a stack's values against that table.
Every problem names the config key, the bad value and what is allowed, and all
problems are reported together, so one `pulumi preview` shows everything to fix.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

from components.config_table import BY_KEY, PROGRAM_SETTINGS, RULES, DeviceSpec, SensorLimit, Setting
from handler.message_format import KNOWN_SENSORS


class ConfigError(Exception):
    """One or more config values the stack cannot be deployed with."""


@dataclass(frozen=True)
class PipelineSettings:
    """Everything the program reads from the stack's configuration: one attribute per
    setting of components/config_table.py (which holds the defaults and bounds)."""

    suffix: str
    owner: str
    cost_center: str
    log_retention_days: int
    stream_retention_hours: int
    archive_transition_days: int
    archive_noncurrent_transition_days: int
    archive_expiration_days: int
    audit_expiration_days: int
    # "create": a multi-region trail with Insights, CloudWatch Logs delivery and the
    # CIS alarms; "none": the stack relies on a trail someone else runs.
    audit_trail: str
    # S3 Object Lock on the trail bucket: NONE, GOVERNANCE or COMPLIANCE.
    audit_object_lock_mode: str
    audit_object_lock_days: int
    metrics_ttl_days: int
    batch_size: int
    batching_window_seconds: int
    maximum_retry_attempts: int
    maximum_record_age_seconds: int
    parallelization_factor: int
    tracing_mode: str
    # None: no reservation (the config's -1).
    reserved_concurrency: Optional[int]
    lambda_memory_mb: int
    lambda_timeout_seconds: int
    kms_deletion_window_days: int
    deletion_protection: bool
    force_destroy: bool
    enable_iot_logging: bool
    iot_log_level: str
    athena_bytes_scanned_cutoff_mb: int
    athena_late_arrival_hours: int
    device_csr_dir: str
    devices: tuple[DeviceSpec, ...]
    alarm_emails: tuple[str, ...]
    alarm_iterator_age_ms: int
    alarm_lambda_errors: int
    alarm_lambda_throttles: int
    alarm_failed_batches: int
    alarm_rule_failures: int
    alarm_dynamodb_throttles: int
    alarm_quarantined_per5_min: int
    alarm_anomalies_per5_min: int
    sensor_limits: Mapping[str, SensorLimit]
    anomaly_settings: Mapping[str, float]

    @property
    def tags(self) -> dict[str, str]:
        """The tags every taggable resource carries in its own inputs."""
        return {
            "Project": "iot-sensor-pipeline",
            "Environment": self.suffix,
            "ManagedBy": "pulumi",
            "Owner": self.owner,
            "CostCenter": self.cost_center,
        }

    @property
    def creates_audit_trail(self) -> bool:
        return self.audit_trail == "create"

    @property
    def alarm_thresholds(self) -> dict[str, int]:
        """Alarm role -> its configured threshold (the table's alarm settings)."""
        return {setting.alarm: getattr(self, setting.program_attribute)
                for setting in PROGRAM_SETTINGS if setting.alarm}

    def sensor_limits_json(self) -> str:
        """Hard limits for the processor: the known sensors' defaults, overridden by config."""
        limits = {name: {"low": spec.low, "high": spec.high} for name, spec in KNOWN_SENSORS.items()}
        limits.update({name: {"low": limit.low, "high": limit.high} for name, limit in self.sensor_limits.items()})
        return json.dumps(limits, sort_keys=True)


# The Python type a structured setting's JSON must have.
_STRUCTURED_TYPES: dict[str, type] = {"array": list, "object": dict}


class _Reader:
    """Reads raw config strings against the table and collects every problem instead of stopping at the first."""

    def __init__(self, get: Callable[[str], Optional[str]], project_dir: Path) -> None:
        self._get = get
        self.project_dir = project_dir
        self.values: dict[str, Any] = {}
        self.problems: list[str] = []

    def problem(self, key: str, value: Any, allowed: str) -> None:
        self.problems.append(f"config `{key}` = {shown(value)} is not allowed: {allowed}")

    def refuse(self, key: str, value: Any) -> None:
        self.problem(key, value, BY_KEY[key].allowed_text(self.values))

    def report(self, message: str) -> None:
        self.problems.append(message)

    def read(self, setting: Setting) -> Any:
        """The setting's value of the right type (its default when absent or unusable), problems noted."""
        raw = self._get(setting.key)
        if raw is None:
            if setting.required:
                self.problems.append(f"config `{setting.key}` is required: set it with "
                                     f"`pulumi config set {setting.key} <value>`")
                return ""
            return setting.default
        if setting.choices:
            return self._choice(setting, raw)
        if setting.kind == "integer":
            return self._integer(setting, raw)
        if setting.kind == "boolean":
            return self._boolean(setting, raw)
        if setting.kind in _STRUCTURED_TYPES:
            return self._structured(setting, raw, _STRUCTURED_TYPES[setting.kind])
        if setting.pattern is not None and not setting.pattern.match(raw):
            self.refuse(setting.key, raw)
        return raw

    def _integer(self, setting: Setting, raw: str) -> Any:  # the default when unusable
        try:
            value = int(raw)
        except ValueError:
            self.problem(setting.key, raw, f"a whole number from {setting.low} to {setting.high}")
            return setting.default
        if setting.low is not None and setting.high is not None and not setting.low <= value <= setting.high:
            self.refuse(setting.key, value)
        return value

    def _choice(self, setting: Setting, raw: str) -> Any:
        value: Any = raw
        if setting.kind == "integer":
            try:
                value = int(raw)
            except ValueError:
                pass
        if value not in setting.choices:
            self.refuse(setting.key, raw)
            return setting.default
        return value

    def _boolean(self, setting: Setting, raw: str) -> Any:  # the default when unusable
        if raw.lower() not in ("true", "false"):
            self.refuse(setting.key, raw)
            return setting.default
        return raw.lower() == "true"

    def _structured(self, setting: Setting, raw: str, expected: type) -> Any:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            self.problem(setting.key, raw,
                         f"a JSON {expected.__name__} (use `pulumi config set --path` or YAML in the stack file)")
            return setting.default
        if not isinstance(value, expected):
            self.problem(setting.key, value, f"a {expected.__name__}")
            return setting.default
        return value

    def undeclared(self, keys: Iterable[str]) -> None:
        """A key the program does not declare would be ignored silently, its default used instead."""
        declared = sorted(setting.key for setting in PROGRAM_SETTINGS)
        by_case = {key.lower(): key for key in declared}
        for key in sorted(set(keys) - set(declared)):
            close = ([by_case[key.lower()]] if key.lower() in by_case
                     else difflib.get_close_matches(key, declared, n=1, cutoff=0.6))
            hint = f"did you mean `{close[0]}`?" if close else "the README's Configuration table lists every key"
            self.problems.append(f"config `{key}` is not a setting of this program: {hint}")


def shown(value: Any) -> str:
    """A config value as the user wrote it: `45`, `Dev_1`, `[]`; quoted only when a string needs it."""
    if isinstance(value, str) and value and value == value.strip() and value.isprintable():
        return value
    return json.dumps(value)


def configured_keys(project: str) -> list[str]:
    """The keys of the project's namespace set for this stack, as the Pulumi runtime hands them over."""
    from pulumi.runtime import config as runtime_config  # the program's import; the handler never reads this

    keys = {*runtime_config.CONFIG.get(), *runtime_config.get_config_env()}
    return sorted(key.split(":", 1)[1] for key in keys if key.startswith(f"{project}:"))


def read_settings(get: Callable[[str], Optional[str]], project_dir: Path,
                  set_keys: Iterable[str] = ()) -> PipelineSettings:
    """Build the settings from `get(key) -> raw string or None`; raise ConfigError listing every problem.

    `set_keys`: every key set in the project's namespace (`configured_keys`); one the program
    does not declare is a problem, with the closest declared key.
    """
    reader = _Reader(get, project_dir)
    for setting in PROGRAM_SETTINGS:
        value = reader.read(setting)
        reader.values[setting.key] = setting.convert(value, reader) if setting.convert else value
    for rule in RULES:
        rule.check(reader.values, reader)
    reader.undeclared(set_keys)
    if reader.problems:
        raise ConfigError(
            "the stack's configuration has problems:\n  - " + "\n  - ".join(reader.problems)
        )
    return PipelineSettings(**{setting.program_attribute: reader.values[setting.key] for setting in PROGRAM_SETTINGS})


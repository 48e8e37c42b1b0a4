"""The stack's configuration, read once into one typed object and validated before
any resource is declared.

Every problem names the config key, the bad value and what is allowed, and all
problems are reported together, so one `pulumi preview` shows everything to fix.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

from handler.detector_settings import DetectorSettingsError
from handler.detector_settings import validate as validate_detector_settings
from handler.message_format import DEVICE_ID_PATTERN, KNOWN_SENSORS, SENSOR_NAME_PATTERN

# Values CloudWatch Logs accepts for a log group's retention.
CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
    2192, 2557, 2922, 3288, 3653,
)
IOT_LOG_LEVELS = ("DEBUG", "INFO", "ERROR", "WARN", "DISABLED")
# Lambda's X-Ray tracing modes (components/processing.py).
TRACING_MODES = ("Active", "PassThrough")
AUDIT_TRAIL_CHOICES = ("create", "none")
OBJECT_LOCK_MODES = ("NONE", "GOVERNANCE", "COMPLIANCE")

# The suffix ends up in S3 bucket prefixes (at most 37 characters, lower case),
# IAM role names (64) and topic rule names (letters, digits, underscores).
# `iot-cloudtrail-logs-<suffix>-` is the longest prefix: 16 characters fit.
SUFFIX_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,14}[a-z0-9])?\Z")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
TAG_VALUE_PATTERN = re.compile(r"^[\w .:/=+\-@]{1,256}\Z")


class ConfigError(Exception):
    """One or more config values the stack cannot be deployed with."""


@dataclass(frozen=True)
class DeviceSpec:
    """A device registered in the stack: an IoT thing whose certificate comes from a CSR."""

    name: str
    csr_path: Path


@dataclass(frozen=True)
class SensorLimit:
    low: float
    high: float


@dataclass(frozen=True)
class AlarmSettings:
    """Thresholds for the pipeline's CloudWatch alarms."""

    iterator_age_ms: int = 1_800_000
    lambda_errors: int = 1
    lambda_throttles: int = 1
    failed_batches: int = 1
    rule_failures: int = 1
    dynamodb_throttles: int = 1
    quarantined_per_5min: int = 100
    anomalies_per_5min: int = 500
    emails: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditSettings:
    """The stack's own trail, or none (the organization's trail covers the account)."""

    # "create": a multi-region trail with Insights, CloudWatch Logs delivery and the
    # CIS alarms; "none": the stack relies on a trail someone else runs.
    trail: str = "create"
    # S3 Object Lock on the trail bucket: NONE, GOVERNANCE or COMPLIANCE. Once on,
    # a bucket's Object Lock cannot be turned off.
    object_lock_mode: str = "NONE"
    object_lock_days: int = 365

    @property
    def creates_trail(self) -> bool:
        return self.trail == "create"


@dataclass(frozen=True)
class PipelineSettings:
    """Everything the program reads from the stack's configuration."""

    suffix: str
    region: str
    owner: str
    cost_center: str
    log_retention_days: int = 30
    stream_retention_hours: int = 24
    archive_transition_days: int = 90
    archive_noncurrent_transition_days: int = 30
    archive_expiration_days: int = 0
    audit_expiration_days: int = 0
    metrics_ttl_days: int = 90
    batch_size: int = 500
    batching_window_seconds: int = 5
    maximum_retry_attempts: int = 5
    maximum_record_age_seconds: int = 3600
    parallelization_factor: int = 1
    tracing_mode: str = "Active"
    reserved_concurrency: Optional[int] = None
    lambda_memory_mb: int = 512
    lambda_timeout_seconds: int = 120
    kms_deletion_window_days: int = 30
    deletion_protection: bool = True
    force_destroy: bool = False
    enable_iot_logging: bool = False
    iot_log_level: str = "WARN"
    # Athena: the most one query may scan, and how late after its device time a
    # reading may arrive and still be found by the device-time named query.
    athena_bytes_scanned_cutoff_mb: int = 1024
    athena_late_arrival_hours: int = 24
    devices: tuple[DeviceSpec, ...] = ()
    sensor_limits: Mapping[str, SensorLimit] = field(default_factory=dict)
    anomaly_settings: Mapping[str, float] = field(default_factory=dict)
    alarms: AlarmSettings = AlarmSettings()
    audit: AuditSettings = AuditSettings()

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

    def sensor_limits_json(self) -> str:
        """Hard limits for the processor: the known sensors' defaults, overridden by config."""
        limits = {name: {"low": spec.low, "high": spec.high} for name, spec in KNOWN_SENSORS.items()}
        limits.update({name: {"low": limit.low, "high": limit.high} for name, limit in self.sensor_limits.items()})
        return json.dumps(limits, sort_keys=True)


class _Reader:
    """Reads raw config strings and collects every problem instead of stopping at the first."""

    def __init__(self, get: Callable[[str], Optional[str]]) -> None:
        self.asked: set[str] = set()
        self.problems: list[str] = []

        def asking(key: str) -> Optional[str]:
            # Every key the program reads is a key it declares: what remains in the stack is a typo.
            self.asked.add(key)
            return get(key)

        self._get = asking

    def problem(self, key: str, value: Any, allowed: str) -> None:
        self.problems.append(f"config `{key}` = {shown(value)} is not allowed: {allowed}")

    def undeclared(self, keys: Iterable[str]) -> None:
        """A key the program never reads would be ignored silently, its default used instead."""
        declared = sorted(self.asked)
        by_case = {key.lower(): key for key in declared}
        for key in sorted(set(keys) - self.asked):
            close = ([by_case[key.lower()]] if key.lower() in by_case
                     else difflib.get_close_matches(key, declared, n=1, cutoff=0.6))
            hint = f"did you mean `{close[0]}`?" if close else "the README's Configuration table lists every key"
            self.problems.append(f"config `{key}` is not a setting of this program: {hint}")

    def text(self, key: str, default: Optional[str] = None, pattern: Optional[re.Pattern] = None,
             allowed: str = "") -> str:
        raw = self._get(key)
        if raw is None:
            if default is None:
                self.problems.append(f"config `{key}` is required: set it with `pulumi config set {key} <value>`")
                return ""
            return default
        if pattern is not None and not pattern.match(raw):
            self.problem(key, raw, allowed)
        return raw

    def integer(self, key: str, default: int, low: int, high: int, allowed: str = "") -> int:
        raw = self._get(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problem(key, raw, f"a whole number from {low} to {high}")
            return default
        if not low <= value <= high:
            self.problem(key, value, allowed or f"a whole number from {low} to {high}")
        return value

    def choice(self, key: str, default: Any, choices: tuple, convert: Callable[[str], Any] = str,
               allowed: str = "") -> Any:
        raw = self._get(key)
        if raw is None:
            return default
        try:
            value = convert(raw)
        except ValueError:
            value = raw
        if value not in choices:
            self.problem(key, raw, allowed or f"one of {', '.join(str(c) for c in choices)}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        raw = self._get(key)
        if raw is None:
            return default
        if raw.lower() not in ("true", "false"):
            self.problem(key, raw, "true or false")
            return default
        return raw.lower() == "true"

    def structured(self, key: str, default: Any, expected: type) -> Any:
        raw = self._get(key)
        if raw is None:
            return default
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            self.problem(key, raw, f"a JSON {expected.__name__} (use `pulumi config set --path` or YAML in the stack file)")
            return default
        if not isinstance(value, expected):
            self.problem(key, value, f"a {expected.__name__}")
            return default
        return value


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


def read_settings(get: Callable[[str], Optional[str]], region: Optional[str], project_dir: Path,
                  set_keys: Iterable[str] = ()) -> PipelineSettings:
    """Build the settings from `get(key) -> raw string or None`; raise ConfigError listing every problem.

    `set_keys`: every key set in the project's namespace (`configured_keys`); one the program
    does not read is a problem, with the closest declared key.
    """
    reader = _Reader(get)
    suffix = reader.text(
        "environmentSuffix", pattern=SUFFIX_PATTERN,
        allowed="1-16 lower-case letters, digits or hyphens, starting and ending with a letter or digit "
        "(it is part of S3 bucket names)",
    )
    owner = reader.text("owner", pattern=TAG_VALUE_PATTERN, allowed="1-256 letters, digits, spaces or _.:/=+-@")
    cost_center = reader.text("costCenter", pattern=TAG_VALUE_PATTERN, allowed="1-256 letters, digits, spaces or _.:/=+-@")
    log_retention_days = reader.choice(
        "logRetentionDays", 30, CLOUDWATCH_RETENTION_DAYS, int,
        f"one of the values CloudWatch Logs accepts: {', '.join(map(str, CLOUDWATCH_RETENTION_DAYS))}")
    stream_retention_hours = reader.integer("streamRetentionHours", 24, 24, 8760,
                                            "whole hours from 24 to 8760 (Kinesis limits)")
    archive_transition_days = reader.integer(
        "archiveTransitionDays", 90, 0, 36500,
        "whole days from 0 (S3's minimum for GLACIER) to 36500")
    noncurrent_transition_days = reader.integer(
        "archiveNoncurrentTransitionDays", 30, 1, 36500,
        "whole days from 1 (S3's minimum for noncurrent versions) to 36500")
    archive_expiration_days = reader.integer("archiveExpirationDays", 0, 0, 36500,
                                             "0 (keep forever) or whole days to 36500")
    if archive_expiration_days and archive_expiration_days <= archive_transition_days:
        reader.problem("archiveExpirationDays", archive_expiration_days,
                       f"0 (keep forever) or more than archiveTransitionDays ({archive_transition_days}); "
                       "S3 rejects an expiration before the transition")
    # Noncurrent versions expire after the same number of days (components/secure_bucket.py).
    elif archive_expiration_days and archive_expiration_days <= noncurrent_transition_days:
        reader.problem("archiveExpirationDays", archive_expiration_days,
                       f"0 (keep forever) or more than archiveNoncurrentTransitionDays ({noncurrent_transition_days}); "
                       "S3 rejects a noncurrent-version expiration before the noncurrent transition")
    audit_expiration_days = reader.integer("auditExpirationDays", 0, 0, 36500,
                                           "0 (keep forever) or whole days to 36500")
    if audit_expiration_days and audit_expiration_days <= archive_transition_days:
        reader.problem("auditExpirationDays", audit_expiration_days,
                       f"0 (keep forever) or more than archiveTransitionDays ({archive_transition_days})")
    metrics_ttl_days = reader.integer("metricsTtlDays", 90, 1, 3650)
    batch_size = reader.integer("batchSize", 500, 1, 10000, "1 to 10000 records (Kinesis event source limit)")
    batching_window_seconds = reader.integer("batchingWindowSeconds", 5, 0, 300, "0 to 300 seconds")
    maximum_retry_attempts = reader.integer(
        "maximumRetryAttempts", 5, 0, 10000,
        "0 to 10000 (-1, retry forever, stalls the shard until the data expires)")
    maximum_record_age_seconds = reader.integer(
        "maximumRecordAgeSeconds", 3600, 60, 604800,
        "60 to 604800 seconds (-1, forever, stalls the shard until the data expires)")
    if maximum_record_age_seconds > stream_retention_hours * 3600:
        reader.problem("maximumRecordAgeSeconds", maximum_record_age_seconds,
                       f"at most the stream retention ({stream_retention_hours * 3600} s), or failed records "
                       "expire from the stream before they reach the on-failure destination")
    parallelization_factor = reader.integer("parallelizationFactor", 1, 1, 10)
    tracing_mode = reader.choice("tracing", "Active", TRACING_MODES,
                                 allowed="Active (X-Ray traces every invocation) or PassThrough (no tracing)")
    reserved_concurrency = _read_reserved_concurrency(reader, parallelization_factor)
    lambda_memory_mb = reader.integer("lambdaMemoryMb", 512, 128, 10240)
    lambda_timeout_seconds = reader.integer("lambdaTimeoutSeconds", 120, 1, 900)
    kms_deletion_window_days = reader.integer("kmsDeletionWindowDays", 30, 7, 30, "7 to 30 days (KMS limits)")
    deletion_protection = reader.boolean("deletionProtection", True)
    force_destroy = reader.boolean("forceDestroy", False)
    enable_iot_logging = reader.boolean("enableIotLogging", False)
    iot_log_level = reader.choice("iotLogLevel", "WARN", IOT_LOG_LEVELS)
    athena_bytes_scanned_cutoff_mb = reader.integer(
        "athenaBytesScannedCutoffMb", 1024, 10, 10_000_000,
        "whole MiB from 10 (Athena's minimum per-query limit) to 10000000")
    athena_late_arrival_hours = reader.integer(
        "athenaLateArrivalHours", 24, 0, 8760,
        "whole hours from 0 to 8760 (how long after its device time a reading may still arrive)")
    devices = _read_devices(reader, project_dir)
    sensor_limits = _read_sensor_limits(reader)
    anomaly_settings = _read_anomaly_settings(reader)
    alarms = _read_alarms(reader)
    if deletion_protection and not alarms.emails:
        reader.problem("alarmEmails", [],
                       "at least one address with deletionProtection: true: a protected stack's alarms must reach "
                       "someone (`pulumi config set --path 'alarmEmails[0]' oncall@<your domain>`; each address "
                       "confirms its subscription from AWS's e-mail)")
    audit = _read_audit(reader, audit_expiration_days)
    if alarms.iterator_age_ms >= maximum_record_age_seconds * 1000:
        reader.problem("alarmIteratorAgeMs", alarms.iterator_age_ms,
                       f"less than maximumRecordAgeSeconds ({maximum_record_age_seconds * 1000} ms), so the alarm "
                       "fires before records age out to the on-failure destination")

    reader.undeclared(set_keys)
    resolved_region = region or "ap-southeast-1"
    if reader.problems:
        raise ConfigError(
            "the stack's configuration has problems:\n  - " + "\n  - ".join(reader.problems)
        )
    return PipelineSettings(
        suffix=suffix, region=resolved_region, owner=owner, cost_center=cost_center,
        log_retention_days=log_retention_days, stream_retention_hours=stream_retention_hours,
        archive_transition_days=archive_transition_days,
        archive_noncurrent_transition_days=noncurrent_transition_days,
        archive_expiration_days=archive_expiration_days, audit_expiration_days=audit_expiration_days,
        metrics_ttl_days=metrics_ttl_days, batch_size=batch_size,
        batching_window_seconds=batching_window_seconds, maximum_retry_attempts=maximum_retry_attempts,
        maximum_record_age_seconds=maximum_record_age_seconds,
        parallelization_factor=parallelization_factor, tracing_mode=tracing_mode,
        reserved_concurrency=reserved_concurrency, lambda_memory_mb=lambda_memory_mb,
        lambda_timeout_seconds=lambda_timeout_seconds, kms_deletion_window_days=kms_deletion_window_days,
        deletion_protection=deletion_protection, force_destroy=force_destroy,
        enable_iot_logging=enable_iot_logging, iot_log_level=iot_log_level,
        athena_bytes_scanned_cutoff_mb=athena_bytes_scanned_cutoff_mb,
        athena_late_arrival_hours=athena_late_arrival_hours, devices=devices,
        sensor_limits=sensor_limits, anomaly_settings=anomaly_settings, alarms=alarms, audit=audit,
    )


def _read_audit(reader: _Reader, audit_expiration_days: int) -> AuditSettings:
    defaults = AuditSettings()
    trail = reader.choice("auditTrail", defaults.trail, AUDIT_TRAIL_CHOICES,
                          allowed="create (the stack's own trail) or none (an organization trail covers the account)")
    mode = reader.choice("auditObjectLockMode", defaults.object_lock_mode, OBJECT_LOCK_MODES)
    days = reader.integer("auditObjectLockDays", defaults.object_lock_days, 1, 36500)
    if mode != "NONE" and trail != "create":
        reader.problem("auditObjectLockMode", mode, "NONE when auditTrail is none (there is no trail bucket to lock)")
    if mode != "NONE" and audit_expiration_days and days > audit_expiration_days:
        reader.problem("auditObjectLockDays", days,
                       f"at most auditExpirationDays ({audit_expiration_days}): a lifecycle rule cannot expire a "
                       "log file that Object Lock still retains")
    return AuditSettings(trail=trail, object_lock_mode=mode, object_lock_days=days)


def _read_reserved_concurrency(reader: _Reader, parallelization_factor: int) -> Optional[int]:
    """None (-1, the default, Lambda's "no reservation"): any reservation fails `pulumi up` on
    an account whose concurrency quota leaves less than 100 unreserved, as new accounts' do."""
    allowed = (f"-1 (no reservation: share the account's unreserved concurrency), or from "
               f"parallelizationFactor ({parallelization_factor}) to 1000; the mapping needs shards x "
               "parallelizationFactor")
    value = reader.integer("reservedConcurrency", -1, -1, 1000, allowed)
    if value == -1:
        return None
    # Each shard runs up to parallelizationFactor batches at once; an on-demand stream
    # has at least one shard, so less than that throttles the mapping whatever the load.
    if 0 <= value < parallelization_factor:  # below -1 or above 1000: reported by reader.integer
        reader.problem("reservedConcurrency", value, allowed)
    return value


def _read_devices(reader: _Reader, project_dir: Path) -> tuple[DeviceSpec, ...]:
    names = reader.structured("devices", [], list)
    csr_dir = reader.text("deviceCsrDir", default="devices")
    devices: list[DeviceSpec] = []
    for index, name in enumerate(names):
        key = f"devices[{index}]"
        if not isinstance(name, str) or not DEVICE_ID_PATTERN.match(name):
            reader.problem(key, name, f"a device id matching {DEVICE_ID_PATTERN.pattern}")
            continue
        if name in names[:index]:
            reader.problem(key, name, "a device not already listed (thing names are unique)")
            continue
        csr_path = (project_dir / csr_dir / f"{name}.csr").resolve()
        shown = f"{csr_dir}/{name}.csr"
        if not csr_path.is_file():
            reader.problem(
                key, name,
                f"a device with a certificate signing request at {shown} (make one on the device with "
                f"`openssl req -new -key {name}.key -subj /CN={name} -out {name}.csr`; the key stays there)",
            )
        elif "BEGIN CERTIFICATE REQUEST" not in csr_path.read_text(errors="replace"):
            reader.problem(key, name, f"a device whose {shown} is a PEM CERTIFICATE REQUEST")
        else:
            devices.append(DeviceSpec(name=name, csr_path=csr_path))
    return tuple(devices)


def _read_sensor_limits(reader: _Reader) -> dict[str, SensorLimit]:
    raw = reader.structured("sensorLimits", {}, dict)
    limits: dict[str, SensorLimit] = {}
    for sensor, bounds in raw.items():
        key = f"sensorLimits.{sensor}"
        if not SENSOR_NAME_PATTERN.match(sensor):
            reader.problem(key, sensor, f"a sensor name matching {SENSOR_NAME_PATTERN.pattern}")
            continue
        if not (isinstance(bounds, dict) and _finite(bounds.get("low")) and _finite(bounds.get("high"))
                and bounds["low"] < bounds["high"]):
            reader.problem(key, bounds, '{"low": <number>, "high": <number>} with low < high')
            continue
        limits[sensor] = SensorLimit(low=float(bounds["low"]), high=float(bounds["high"]))
    return limits


def _read_anomaly_settings(reader: _Reader) -> dict[str, float]:
    raw = reader.structured("anomalyDetection", {}, dict)
    # The processor's own validator: what passes here is what the function starts with.
    try:
        validate_detector_settings(raw)
    except DetectorSettingsError as error:
        reader.problems.extend(f"config {problem}" for problem in error.problems)
        return {}
    return dict(raw)


# Alarm thresholds: config key -> AlarmSettings field.
ALARM_THRESHOLD_KEYS = {
    "alarmIteratorAgeMs": "iterator_age_ms",
    "alarmLambdaErrors": "lambda_errors",
    "alarmLambdaThrottles": "lambda_throttles",
    "alarmFailedBatches": "failed_batches",
    "alarmRuleFailures": "rule_failures",
    "alarmDynamodbThrottles": "dynamodb_throttles",
    "alarmQuarantinedPer5Min": "quarantined_per_5min",
    "alarmAnomaliesPer5Min": "anomalies_per_5min",
}


def _read_alarms(reader: _Reader) -> AlarmSettings:
    defaults = AlarmSettings()
    values: dict[str, Any] = {
        field_name: reader.integer(key, getattr(defaults, field_name), 1, 2**31 - 1)
        for key, field_name in ALARM_THRESHOLD_KEYS.items()
    }
    emails = reader.structured("alarmEmails", [], list)
    if not all(isinstance(email, str) and EMAIL_PATTERN.match(email) for email in emails):
        reader.problem("alarmEmails", emails, "a list of e-mail addresses")
    else:
        values["emails"] = tuple(emails)
    return AlarmSettings(**values)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

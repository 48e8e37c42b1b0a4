"""Every setting of the stack, declared once: its key, type, default, what is allowed and what it means.

`components/settings.py` reads and validates a stack's configuration from this table
and nothing else; `components/config_docs.py` renders `Pulumi.yaml`'s `config:` block
and the README's configuration table from it (tests/test_docs.py checks both files
against it). A default, a bound or a message is therefore written here only.

A setting's value reaches the program as the `PipelineSettings` attribute named after
its key (`batchSize` -> `batch_size`, unless `attribute` says otherwise).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Optional, Protocol

from handler import detector_settings
from handler.message_format import DEVICE_ID_PATTERN, SENSOR_NAME_PATTERN

# Values CloudWatch Logs accepts for a log group's retention.
CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
    2192, 2557, 2922, 3288, 3653,
)
# The suffix ends up in S3 bucket prefixes (at most 37 characters, lower case),
# IAM role names (64) and topic rule names (letters, digits, underscores).
# `iot-cloudtrail-logs-<suffix>-` is the longest prefix: 16 characters fit.
SUFFIX_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,14}[a-z0-9])?\Z")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
TAG_VALUE_PATTERN = re.compile(r"^[\w .:/=+\-@]{1,256}\Z")
TAG_VALUE_ALLOWED = "1-256 letters, digits, spaces or _.:/=+-@"
# CloudWatch alarm thresholds are whole counts here; the upper bound is the API's integer range.
ALARM_THRESHOLD_MAX = 2**31 - 1

Kind = Literal["string", "integer", "boolean", "array", "object"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


# The default of a setting every stack must set (it has no sensible value of its own).
REQUIRED: Any = _Required()


class Checking(Protocol):
    """What an item check and a rule see: the values read so far and where to report."""

    @property
    def values(self) -> Mapping[str, Any]: ...

    @property
    def project_dir(self) -> Path: ...

    def problem(self, key: str, value: Any, allowed: str) -> None: ...

    def refuse(self, key: str, value: Any) -> None:
        """`value` of `key` is not allowed, for the reason the key's `allowed` gives."""

    def report(self, message: str) -> None:
        """A problem already worded with its key (the detector validator's)."""


@dataclass(frozen=True)
class Setting:
    """One config key of the project's namespace (or a provider's, with `provider`).

    `allowed` is what a wrong value's message says is allowed. It may name `{low}`,
    `{high}`, `{choices}` and any setting declared before it by key
    (`{parallelizationFactor}`), filled in with the stack's values. `convert` turns a
    value of the right type and range into what the program uses, reporting any
    element that is wrong (a list's items, an object's entries).
    """

    key: str
    kind: Kind
    description: str
    default: Any = REQUIRED
    low: Optional[int] = None
    high: Optional[int] = None
    choices: tuple[Any, ...] = ()
    pattern: Optional[re.Pattern[str]] = None
    allowed: str = ""
    convert: Optional[Callable[[Any, Checking], Any]] = None
    # The PipelineSettings attribute, when it is not the key in snake_case.
    attribute: str = ""
    # The alarm (components/alarms.py role) whose threshold this setting is.
    alarm: str = ""
    # The README's default column, where the value alone would not say what it means.
    shown_default: str = ""
    # (text, link): a README section (`#anchor`) or a document that says more.
    see: Optional[tuple[str, str]] = None
    # Read by a provider (aws:region), not by the program.
    provider: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def program_attribute(self) -> str:
        return self.attribute or re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", self.key).lower()

    def allowed_text(self, values: Mapping[str, Any]) -> str:
        """What is allowed, with the bounds and the other settings' `values` filled in."""
        fills = {**values, "low": self.low, "high": self.high, "choices": ", ".join(str(c) for c in self.choices)}
        # Only `{name}` placeholders: a pattern's `{1,64}` or an object's `{<sensor>: ...}` stay as written.
        return re.sub(r"\{(\w+)\}", lambda match: str(fills.get(match[1], match[0])),
                      self.allowed or self._default_allowed())

    def _default_allowed(self) -> str:
        if self.kind == "boolean":
            return "true or false"
        if self.choices:
            return "one of {choices}"
        if self.kind == "integer":
            return "a whole number from {low} to {high}"
        raise ValueError(f"setting {self.key}: say what is allowed (`allowed=`)")


@dataclass(frozen=True)
class DeviceSpec:
    """A device registered in the stack: an IoT thing whose certificate comes from a CSR."""

    name: str
    csr_path: Path


@dataclass(frozen=True)
class SensorLimit:
    low: float
    high: float


def _devices(names: list[Any], checking: Checking) -> tuple[DeviceSpec, ...]:
    csr_dir = checking.values["deviceCsrDir"]
    devices: list[DeviceSpec] = []
    for index, name in enumerate(names):
        key = f"devices[{index}]"
        if not isinstance(name, str) or not DEVICE_ID_PATTERN.match(name):
            checking.problem(key, name, f"a device id matching {DEVICE_ID_PATTERN.pattern}")
            continue
        if name in names[:index]:
            checking.problem(key, name, "a device not already listed (thing names are unique)")
            continue
        csr_path = (checking.project_dir / csr_dir / f"{name}.csr").resolve()
        shown = f"{csr_dir}/{name}.csr"
        if not csr_path.is_file():
            checking.problem(
                key, name,
                f"a device with a certificate signing request at {shown} (make one on the device with "
                f"`openssl req -new -key {name}.key -subj /CN={name} -out {name}.csr`; the key stays there)",
            )
        elif "BEGIN CERTIFICATE REQUEST" not in csr_path.read_text(errors="replace"):
            checking.problem(key, name, f"a device whose {shown} is a PEM CERTIFICATE REQUEST")
        else:
            devices.append(DeviceSpec(name=name, csr_path=csr_path))
    return tuple(devices)


def _emails(emails: list[Any], checking: Checking) -> tuple[str, ...]:
    if not all(isinstance(email, str) and EMAIL_PATTERN.match(email) for email in emails):
        checking.refuse("alarmEmails", emails)
        return ()
    return tuple(emails)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _sensor_limits(raw: dict[str, Any], checking: Checking) -> dict[str, SensorLimit]:
    limits: dict[str, SensorLimit] = {}
    for sensor, bounds in raw.items():
        key = f"sensorLimits.{sensor}"
        if not SENSOR_NAME_PATTERN.match(sensor):
            checking.problem(key, sensor, f"a sensor name matching {SENSOR_NAME_PATTERN.pattern}")
            continue
        if not (isinstance(bounds, dict) and _finite(bounds.get("low")) and _finite(bounds.get("high"))
                and bounds["low"] < bounds["high"]):
            checking.problem(key, bounds, '{"low": <number>, "high": <number>} with low < high')
            continue
        limits[sensor] = SensorLimit(low=float(bounds["low"]), high=float(bounds["high"]))
    return limits


def _anomaly_settings(raw: dict[str, Any], checking: Checking) -> dict[str, Any]:
    # The processor's own validator: what passes here is what the function starts with.
    try:
        detector_settings.validate(raw)
    except detector_settings.DetectorSettingsError as error:
        for problem in error.problems:
            checking.report(f"config {problem}")
        return {}
    return dict(raw)


def _no_reservation_is_none(value: int, _checking: Checking) -> Optional[int]:
    # -1 is Lambda's "no reservation": the function then declares none at all.
    return None if value == -1 else value


def _alarm_threshold(key: str, alarm: str, description: str, default: int) -> Setting:
    return Setting(key, "integer", description, default, low=1, high=ALARM_THRESHOLD_MAX, alarm=alarm,
                   see=("docs/operations.md", "docs/operations.md#thresholds"))


_AUDIT = ("Audit", "#audit")
_IOT_LOGGING = ("IoT Core logging", "#iot-core-logging-on-an-account-that-already-has-it")
_RESERVED_CONCURRENCY = ("Reserved concurrency", "#reserved-concurrency")

SETTINGS: tuple[Setting, ...] = (
    Setting("aws:region", "string", "region of the stack", "ap-southeast-1", allowed="an AWS region",
            provider=True),
    Setting("environmentSuffix", "string",
            "suffix in every name: `iot-sensor-stream-<suffix>`, `sensor-metrics-<suffix>`, ... (dev, prod)",
            pattern=SUFFIX_PATTERN, attribute="suffix",
            allowed="1-16 lower-case letters, digits or hyphens, starting and ending with a letter or digit "
            "(it is part of S3 bucket names)"),
    Setting("owner", "string", "the `Owner` tag on every resource: the team or person accountable",
            pattern=TAG_VALUE_PATTERN, allowed=TAG_VALUE_ALLOWED),
    Setting("costCenter", "string", "the `CostCenter` tag on every resource",
            pattern=TAG_VALUE_PATTERN, allowed=TAG_VALUE_ALLOWED),
    Setting("logRetentionDays", "integer",
            "days the stack's log groups keep events (the processor's, the rule errors', the trail's, IoT's)",
            30, choices=CLOUDWATCH_RETENTION_DAYS,
            allowed="one of the values CloudWatch Logs accepts: {choices}"),
    Setting("streamRetentionHours", "integer", "hours Kinesis keeps a record", 24, low=24, high=8760,
            allowed="whole hours from {low} to {high} (Kinesis limits)"),
    Setting("archiveTransitionDays", "integer",
            "days before archive and audit objects move to S3 Glacier Flexible Retrieval", 90, low=0, high=36500,
            allowed="whole days from {low} (S3's minimum for GLACIER) to {high}"),
    Setting("archiveNoncurrentTransitionDays", "integer",
            "days before noncurrent object versions move to S3 Glacier Flexible Retrieval", 30, low=1, high=36500,
            allowed="whole days from {low} (S3's minimum for noncurrent versions) to {high}"),
    Setting("archiveExpirationDays", "integer",
            "days before raw archive objects (and noncurrent versions) expire, 0 to keep them; more than "
            "`archiveTransitionDays` and `archiveNoncurrentTransitionDays`, or S3 rejects the lifecycle rule",
            0, low=0, high=36500, allowed="0 (keep forever) or whole days to {high}"),
    Setting("auditExpirationDays", "integer",
            "days before CloudTrail log files (and the access logs) expire, 0 to keep them; more than "
            "`archiveTransitionDays`", 0, low=0, high=36500, allowed="0 (keep forever) or whole days to {high}"),
    Setting("auditTrail", "string",
            "`create`: the stack's own multi-region trail, its CloudWatch Logs delivery and the CIS alarms; "
            "`none`: an organization trail already covers the account", "create", choices=("create", "none"),
            allowed="create (the stack's own trail) or none (an organization trail covers the account)",
            see=_AUDIT),
    Setting("auditObjectLockMode", "string",
            "S3 Object Lock on the trail bucket; once on, it cannot be turned off", "NONE",
            choices=("NONE", "GOVERNANCE", "COMPLIANCE"), see=_AUDIT),
    Setting("auditObjectLockDays", "integer",
            "days Object Lock retains each trail log file, at most `auditExpirationDays` when that is set",
            365, low=1, high=36500),
    Setting("metricsTtlDays", "integer", "days DynamoDB keeps metrics, anomaly episodes and detector state (TTL)",
            90, low=1, high=3650),
    Setting("batchSize", "integer", "Kinesis records per invocation of the processor", 500, low=1, high=10000,
            allowed="{low} to {high} records (Kinesis event source limit)"),
    Setting("batchingWindowSeconds", "integer", "seconds the mapping may wait to fill a batch", 5, low=0, high=300,
            allowed="{low} to {high} seconds"),
    Setting("maximumRetryAttempts", "integer",
            "retries of a failing batch before it goes to the on-failure destination", 5, low=0, high=10000,
            allowed="{low} to {high} (-1, retry forever, stalls the shard until the data expires)"),
    Setting("maximumRecordAgeSeconds", "integer",
            "oldest record the mapping still processes, at most the stream retention", 3600, low=60, high=604800,
            allowed="{low} to {high} seconds (-1, forever, stalls the shard until the data expires)"),
    Setting("parallelizationFactor", "integer",
            "concurrent batches per shard (per-device order holds either way)", 1, low=1, high=10),
    Setting("tracing", "string",
            "X-Ray tracing of the processor: `Active` traces every invocation (the role then gets "
            "`xray:PutTraceSegments` and `xray:PutTelemetryRecords` on `*`, which X-Ray requires), "
            "`PassThrough` none", "Active", choices=("Active", "PassThrough"), attribute="tracing_mode",
            allowed="Active (X-Ray traces every invocation) or PassThrough (no tracing)"),
    Setting("reservedConcurrency", "integer",
            "the processor's reserved concurrency, -1 for none (the account's unreserved concurrency)", -1,
            low=-1, high=1000, convert=_no_reservation_is_none, shown_default="-1 (none)", see=_RESERVED_CONCURRENCY,
            allowed="-1 (no reservation: share the account's unreserved concurrency), or from "
            "parallelizationFactor ({parallelizationFactor}) to {high}; the mapping needs shards x "
            "parallelizationFactor"),
    Setting("lambdaMemoryMb", "integer", "the processor's memory, in MB", 512, low=128, high=10240),
    Setting("lambdaTimeoutSeconds", "integer", "the processor's time limit, in seconds", 120, low=1, high=900),
    Setting("kmsDeletionWindowDays", "integer", "days between `pulumi destroy` and the KMS key's deletion", 30,
            low=7, high=30, allowed="{low} to {high} days (KMS limits)"),
    Setting("deletionProtection", "boolean",
            "protect the key, table and buckets from deletion (Pulumi's protect, DynamoDB's deletion protection)",
            True),
    Setting("forceDestroy", "boolean",
            "let `pulumi destroy` empty and delete the buckets (the audit bucket only without "
            "`deletionProtection`)", False),
    Setting("enableIotLogging", "boolean",
            "own IoT Core's account-wide logging setting (one stack per account and region)", False,
            see=_IOT_LOGGING),
    Setting("iotLogLevel", "string", "IoT Core's log level when `enableIotLogging` is on", "WARN",
            choices=("DEBUG", "INFO", "ERROR", "WARN", "DISABLED")),
    Setting("athenaBytesScannedCutoffMb", "integer",
            "most data one query in the stack's Athena workgroup may scan, in MiB", 1024, low=10, high=10_000_000,
            allowed="whole MiB from {low} (Athena's minimum per-query limit) to {high}"),
    Setting("athenaLateArrivalHours", "integer",
            "how long after its device time a reading may arrive and still be found by the saved device-time "
            "query", 24, low=0, high=8760, see=("docs/analytics.md", "docs/analytics.md"),
            allowed="whole hours from {low} to {high} (how long after its device time a reading may still arrive)"),
    Setting("deviceCsrDir", "string", "folder, relative to the project, of the devices' certificate signing requests",
            "devices", allowed="a folder"),
    Setting("devices", "array", "device ids to register as things; each needs `<deviceCsrDir>/<id>.csr`", [],
            convert=_devices,
            allowed=f"a list of device ids matching {DEVICE_ID_PATTERN.pattern}, each with a certificate signing "
            "request"),
    Setting("alarmEmails", "array",
            "e-mail addresses subscribed to the alarm topic; at least one with `deletionProtection: true`. AWS "
            "mails each address a confirmation link, and an address receives no alarm until someone follows it: "
            "check the topic's subscriptions after `pulumi up`", [], convert=_emails,
            allowed="a list of e-mail addresses"),
    _alarm_threshold("alarmIteratorAgeMs", "iterator-age",
                     "alarm when the mapping falls this far behind the stream, in ms (below "
                     "`maximumRecordAgeSeconds`)", 1_800_000),
    _alarm_threshold("alarmLambdaErrors", "processor-errors", "alarm on this many processor errors in 5 minutes", 1),
    _alarm_threshold("alarmLambdaThrottles", "processor-throttles",
                     "alarm on this many processor throttles in 5 minutes", 1),
    _alarm_threshold("alarmFailedBatches", "records-to-failure-destination",
                     "alarm when this many records of failed batches go to the on-failure destination in 5 minutes",
                     1),
    _alarm_threshold("alarmRuleFailures", "rule-action-failures",
                     "alarm on this many failed topic rule deliveries in 5 minutes", 1),
    _alarm_threshold("alarmDynamodbThrottles", "metrics-table-throttles",
                     "alarm on this many throttled DynamoDB reads and writes in 5 minutes", 1),
    _alarm_threshold("alarmQuarantinedPer5Min", "records-quarantined",
                     "alarm when more records than this are quarantined in 5 minutes", 100),
    _alarm_threshold("alarmAnomaliesPer5Min", "anomalies",
                     "alarm when more anomaly episodes than this are opened in 5 minutes", 500),
    Setting("sensorLimits", "object", "hard limits per sensor type: `{<sensor>: {low, high}}`", {},
            convert=_sensor_limits, shown_default="the known sensors' physical ranges",
            allowed='{<sensor>: {"low": <number>, "high": <number>}} with low < high for each sensor'),
    Setting(detector_settings.CONFIG_KEY, "object", "detector tuning: `{<setting>: <number>}`", {},
            convert=_anomaly_settings, attribute="anomaly_settings", shown_default="the processor's defaults",
            see=("docs/processor.md", "docs/processor.md"),
            allowed="the settings and ranges of handler/detector_settings.py"),
)

BY_KEY: dict[str, Setting] = {setting.key: setting for setting in SETTINGS}
# The settings of the project's namespace: what the program reads into PipelineSettings.
PROGRAM_SETTINGS: tuple[Setting, ...] = tuple(setting for setting in SETTINGS if not setting.provider)


@dataclass(frozen=True)
class Rule:
    """A condition between settings, checked once every setting is read; `check` reports on `key`."""

    key: str
    check: Callable[[Mapping[str, Any], Checking], None]


def _expiration_after_transitions(values: Mapping[str, Any], checking: Checking) -> None:
    days = values["archiveExpirationDays"]
    if not days:
        return
    if days <= values["archiveTransitionDays"]:
        checking.problem("archiveExpirationDays", days,
                         f"0 (keep forever) or more than archiveTransitionDays ({values['archiveTransitionDays']}); "
                         "S3 rejects an expiration before the transition")
    elif days <= values["archiveNoncurrentTransitionDays"]:
        checking.problem("archiveExpirationDays", days,
                         "0 (keep forever) or more than archiveNoncurrentTransitionDays "
                         f"({values['archiveNoncurrentTransitionDays']}); S3 rejects a noncurrent-version "
                         "expiration before the noncurrent transition")


def _audit_expiration_after_transition(values: Mapping[str, Any], checking: Checking) -> None:
    days = values["auditExpirationDays"]
    if days and days <= values["archiveTransitionDays"]:
        checking.problem("auditExpirationDays", days,
                         f"0 (keep forever) or more than archiveTransitionDays ({values['archiveTransitionDays']})")


def _record_age_within_retention(values: Mapping[str, Any], checking: Checking) -> None:
    retention_seconds = values["streamRetentionHours"] * 3600
    if values["maximumRecordAgeSeconds"] > retention_seconds:
        checking.problem("maximumRecordAgeSeconds", values["maximumRecordAgeSeconds"],
                         f"at most the stream retention ({retention_seconds} s), or failed records expire from the "
                         "stream before they reach the on-failure destination")


def _reservation_covers_a_shard(values: Mapping[str, Any], checking: Checking) -> None:
    # Each shard runs up to parallelizationFactor batches at once; an on-demand stream
    # has at least one shard, so less than that throttles the mapping whatever the load.
    value = values["reservedConcurrency"]
    if value is not None and 0 <= value < values["parallelizationFactor"]:  # -1 and out of range: reported already
        checking.refuse("reservedConcurrency", value)


def _protected_stack_alarms_reach_someone(values: Mapping[str, Any], checking: Checking) -> None:
    if values["deletionProtection"] and not values["alarmEmails"]:
        checking.problem("alarmEmails", [],
                         "at least one address with deletionProtection: true: a protected stack's alarms must reach "
                         "someone (`pulumi config set --path 'alarmEmails[0]' oncall@<your domain>`; each address "
                         "confirms its subscription from AWS's e-mail)")


def _object_lock_needs_a_trail(values: Mapping[str, Any], checking: Checking) -> None:
    if values["auditObjectLockMode"] != "NONE" and values["auditTrail"] != "create":
        checking.problem("auditObjectLockMode", values["auditObjectLockMode"],
                         "NONE when auditTrail is none (there is no trail bucket to lock)")


def _lock_within_expiration(values: Mapping[str, Any], checking: Checking) -> None:
    days, expiration = values["auditObjectLockDays"], values["auditExpirationDays"]
    if values["auditObjectLockMode"] != "NONE" and expiration and days > expiration:
        checking.problem("auditObjectLockDays", days,
                         f"at most auditExpirationDays ({expiration}): a lifecycle rule cannot expire a log file "
                         "that Object Lock still retains")


def _iterator_alarm_before_record_age(values: Mapping[str, Any], checking: Checking) -> None:
    limit_ms = values["maximumRecordAgeSeconds"] * 1000
    if values["alarmIteratorAgeMs"] >= limit_ms:
        checking.problem("alarmIteratorAgeMs", values["alarmIteratorAgeMs"],
                         f"less than maximumRecordAgeSeconds ({limit_ms} ms), so the alarm fires before records age "
                         "out to the on-failure destination")


RULES: tuple[Rule, ...] = (
    # Noncurrent versions expire after the same number of days (components/secure_bucket.py).
    Rule("archiveExpirationDays", _expiration_after_transitions),
    Rule("auditExpirationDays", _audit_expiration_after_transition),
    Rule("maximumRecordAgeSeconds", _record_age_within_retention),
    Rule("reservedConcurrency", _reservation_covers_a_shard),
    Rule("alarmEmails", _protected_stack_alarms_reach_someone),
    Rule("auditObjectLockMode", _object_lock_needs_a_trail),
    Rule("auditObjectLockDays", _lock_within_expiration),
    Rule("alarmIteratorAgeMs", _iterator_alarm_before_record_age),
)

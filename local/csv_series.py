"""Sensor history from a CSV export, read the way plants export it, into columns the backtest replays.

One row per timestamp, one column per sensor, in whatever separator, time
format and column names the historian or logger wrote. What is found is said,
not guessed silently: the separator, the time column and its format, the
sensor name each column becomes (message-format names: lower-case, `_`), the
columns left out (labels, text) and every row that cannot become a device
message, by reason, with its first line numbers.

Rows are kept in columns (`array`), not as dicts: a year of one-second rows
fits in memory.
"""

from __future__ import annotations

import codecs
import csv
import math
import operator
import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from datetime import time as dt_time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handler.message_format import DEVICE_ID_PATTERN, KNOWN_SENSORS, MAX_SENSORS_PER_READING, SENSOR_NAME_PATTERN

SEPARATORS = (",", ";", "\t")
SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
SNIFF_BYTES = 256 * 1024
SNIFF_LINES = 50
# Rows looked at to tell a sensor column (numbers, maybe a few bad cells) from a text column (status, comments).
SAMPLE_ROWS = 200
FIRST_LINES_KEPT = 5

# Column names that hold time, after normalisation (lower case, letters and digits only).
TIME_NAMES = ("timestamp", "datetime", "time", "date", "ts", "timeutc", "datetimeutc", "timestamputc", "localtime",
              "eventtime", "sampletime", "zeit", "zeitstempel", "datum", "horodatage", "fecha")
# Columns that label the data (ground truth); never sent as sensors.
LABEL_NAMES = ("anomaly", "anomalies", "isanomaly", "anomalylabel", "label", "labels", "changepoint",
               "changepoints", "outlier", "isoutlier", "fault", "attack", "groundtruth", "target")

# Units a column name may carry, as the known sensors' units (handler/message_format.py) spell them.
UNIT_ALIASES = {
    "c": "celsius", "°c": "celsius", "degc": "celsius", "degreesc": "celsius", "celsius": "celsius", "℃": "celsius",
    "mm/s": "mm/s", "kpa": "kPa", "%": "percent", "percent": "percent", "%rh": "percent", "rh": "percent",
}
_UNIT_IN_NAME = re.compile(r"^(?P<name>.*?)\s*[\(\[](?P<unit>[^\)\]]*)[\)\]]\s*$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")
_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
_EPOCH_MS_FROM = 1e11  # 1e11 s is the year 5138, 1e11 ms is 1973: larger values are milliseconds


class CsvError(ValueError):
    """A file that cannot be read as a sensor series: the message names the file and the fix."""


class Refusals:
    """Rows that cannot become a device message, counted by reason, with their first line numbers."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.first_lines: dict[str, list[int]] = {}

    def add(self, reason: str, line: int) -> None:
        count = self.counts.get(reason, 0)
        self.counts[reason] = count + 1
        if count < FIRST_LINES_KEPT:
            self.first_lines.setdefault(reason, []).append(line)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        return [f"{count:,} {reason} (first at line{'s' if len(self.first_lines[reason]) > 1 else ''} "
                f"{', '.join(map(str, self.first_lines[reason]))})"
                for reason, count in sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))]


# ---------------------------------------------------------------------------------------------------------------
# Time formats: parse a cell into epoch ms, and write epoch ms back in the file's own form.

class TimeFormat:
    """How a file writes time. `parse` returns epoch ms or None; `format` writes ms as the file would."""

    name = ""          # what the format is, short: refusals name it
    description = ""   # with its time zone: the summary and the plot's axis say it

    def parse(self, text: str) -> int | None:
        raise NotImplementedError

    def format(self, ms: int) -> str:
        raise NotImplementedError

    def to_datetime(self, ms: int) -> datetime:
        """A naive datetime on the file's wall clock (for plot axes)."""
        raise NotImplementedError


class EpochFormat(TimeFormat):
    def __init__(self, scale: int) -> None:
        self.scale = scale  # ms per unit
        self.name = self.description = "epoch milliseconds" if scale == 1 else "epoch seconds"

    def parse(self, text: str) -> int | None:
        try:
            value = float(text)
        except ValueError:
            return None
        return round(value * self.scale) if math.isfinite(value) else None

    def format(self, ms: int) -> str:
        if self.scale == 1:
            return str(ms)
        return str(ms // 1000) if ms % 1000 == 0 else f"{ms / 1000:.3f}"

    def to_datetime(self, ms: int) -> datetime:
        return datetime(1970, 1, 1) + timedelta(milliseconds=ms)  # UTC wall clock


class ClockFormat(TimeFormat):
    """Calendar times: ISO 8601 (`T` or space, optional fraction and offset) or a given strptime pattern.

    Times without an offset are on the wall clock of `zone`; times with one keep it
    when written back (the first row's offset, so a file in one offset reads back
    as written)."""

    def __init__(self, zone: tzinfo, zone_name: str, pattern: str | None, sample: str) -> None:
        self.zone = zone
        self.zone_name = zone_name
        self.pattern = pattern
        first = self._datetime(sample)
        self.aware = first is not None and first.tzinfo is not None
        self.shown_zone = first.tzinfo if self.aware else zone
        self.separator = "T" if pattern is None and len(sample) > 10 and sample[10] == "T" else " "
        self.slashes = pattern is None and sample[4:5] == "/"
        fraction = re.search(r"[.,](\d+)", sample[19:]) if pattern is None else None
        self.fraction_digits = min(len(fraction.group(1)), 6) if fraction else 0
        if pattern:
            self.name = f"strptime {pattern!r}"
        else:
            self.name = "ISO 8601" if self.separator == "T" else "YYYY-MM-DD hh:mm:ss"
            if self.slashes:
                self.name = self.name.replace("-", "/") if self.separator == " " else "ISO 8601 with / in dates"
        self.description = self.name
        if self.aware:
            offset = first.utcoffset()
            shown = "UTC" if not offset else datetime(2000, 1, 1, tzinfo=first.tzinfo).strftime("%z")
            self.description += f", with its offset (written back at {shown}, the first row's)"
        else:
            self.description += f", in {zone_name}"

    def _datetime(self, text: str) -> datetime | None:
        try:
            return datetime.strptime(text, self.pattern) if self.pattern else _iso(text)
        except ValueError:
            return None

    def parse(self, text: str) -> int | None:
        moment = self._datetime(text)
        if moment is None:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        return round(moment.timestamp() * 1000)

    def _local(self, ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(self.shown_zone)

    def format(self, ms: int) -> str:
        moment = self._local(ms)
        if self.pattern:
            return moment.strftime(self.pattern)
        text = moment.replace(tzinfo=None).isoformat(sep=self.separator, timespec="seconds")
        if self.slashes:
            text = text.replace("-", "/", 2)
        if self.fraction_digits or ms % 1000:
            digits = max(self.fraction_digits, 3)
            text += "." + f"{moment.microsecond:06d}"[:digits]
        if self.aware:
            offset = moment.utcoffset() or timedelta(0)
            text += "Z" if offset == timedelta(0) else moment.strftime("%z")[:3] + ":" + moment.strftime("%z")[3:]
        return text

    def to_datetime(self, ms: int) -> datetime:
        return self._local(ms).replace(tzinfo=None)


def zone_of(name: str | None) -> tuple[tzinfo, str]:
    if not name or name.upper() == "UTC":
        return timezone.utc, "UTC"
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        raise CsvError(f"--timezone {name!r} is not a time zone name: use an IANA name such as Europe/Berlin "
                       "or America/Chicago, or UTC") from None


def detect_time_format(values: list[str], zone_name: str | None, pattern: str | None, where: str) -> TimeFormat:
    """The format of a time column from its first cells; CsvError when none of the supported ones fits."""
    zone, shown_name = zone_of(zone_name)
    values = [value for value in values if value]
    if not values:
        raise CsvError(f"{where}: the time column is empty in the first rows; give the right one with --time-column")
    if pattern:
        clock = ClockFormat(zone, shown_name, pattern, values[0])
        if clock.parse(values[0]) is None:
            raise CsvError(f"{where}: the time {values[0]!r} does not match --time-format {pattern!r} "
                           "(strptime codes, e.g. '%d.%m.%Y %H:%M:%S')")
        return clock
    # The format most of the first cells are in; a few unreadable ones are refused later, row by row.
    enough = 0.8 * len(values)
    numbers = [value for value in values if _NUMBER.match(value)]
    if len(numbers) >= enough:
        if zone_name:
            raise CsvError(f"{where}: the times are epoch numbers, which carry no time zone: drop --timezone")
        return EpochFormat(1 if max(abs(float(value)) for value in numbers) >= _EPOCH_MS_FROM else 1000)
    readable = [value for value in values if _clock_like(value, None)]
    if len(readable) >= enough:
        return ClockFormat(zone, shown_name, None, readable[0])
    bad = next(value for value in values if not _clock_like(value, None))
    raise CsvError(f"{where}: cannot read the time {bad!r}; supported are ISO 8601 (2026-11-25T04:01:23Z), "
                   "'YYYY-MM-DD hh:mm:ss', and epoch seconds or milliseconds; give another format with "
                   "--time-format (strptime codes, e.g. '%d.%m.%Y %H:%M:%S'), or the right column with --time-column")


# ---------------------------------------------------------------------------------------------------------------
# Column names.

def _normalised(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _slug(text: str) -> str:
    text = _CAMEL.sub("_", text.strip()).lower().replace("°", "deg").replace("%", "pct")
    return re.sub(r"[^0-9a-z]+", "_", text).strip("_")


def split_unit(header: str) -> tuple[str, str | None]:
    """`Temperature (°C)` -> (`Temperature`, `°C`); a name without a bracketed unit has none."""
    match = _UNIT_IN_NAME.match(header.strip())
    if match and match.group("name").strip() and match.group("unit").strip():
        return match.group("name").strip(), match.group("unit").strip()
    return header.strip(), None


def sensor_name(header: str) -> tuple[str, str | None]:
    """The message-format sensor name for a column, and the unit its name carries.

    A known sensor (temperature, pressure, ...) written in another unit than the
    one its hard limits are in is kept apart (`Pressure [bar]` -> `pressure_bar`),
    so bar readings are never judged against kPa limits.
    """
    base, unit = split_unit(header)
    name = _slug(base) or "sensor"
    if unit and name in KNOWN_SENSORS and UNIT_ALIASES.get(unit.lower().replace(" ", "")) != KNOWN_SENSORS[name].unit:
        name = f"{name}_{_slug(unit) or 'unit'}"
    if not name[0].isalpha():
        name = f"s_{name}"
    return name[:32].rstrip("_"), unit


# ---------------------------------------------------------------------------------------------------------------
# The file.

@dataclass
class ReadOptions:
    separator: str | None = None
    time_column: str | None = None
    time_format: str | None = None       # a strptime pattern for formats other than the supported ones
    timezone: str | None = None          # of times without an offset
    device_column: str | None = None
    device: str | None = None            # the device id of a one-device file (default: from the file name)
    sensors: dict[str, str] = field(default_factory=dict)  # sensor name -> column, overriding the mapping
    ignore: tuple[str, ...] = ()
    labels: str | None = None
    known_columns: dict[str, str] = field(default_factory=dict)  # an export's own names, used when all are present


@dataclass
class SensorColumn:
    header: str
    index: int
    sensor: str
    unit: str | None
    how: str                                   # "named", "--sensor", the known export's mapping
    values: array = field(default_factory=lambda: array("d"))  # NaN where the cell was empty


@dataclass
class Series:
    path: Path
    separator: str
    encoding: str
    time_column: str
    time_format: TimeFormat
    device_column: str | None
    sensors: list[SensorColumn]
    label_columns: list[str]
    text_columns: list[str]
    ignored_columns: list[str]
    labels_column: str | None
    decimal_comma: bool = False
    devices: list[str] = field(default_factory=list)
    lines: array = field(default_factory=lambda: array("q"))        # file line of each kept row
    times: array = field(default_factory=lambda: array("q"))        # epoch ms, the file's own time
    device_index: array = field(default_factory=lambda: array("H"))
    labels: array = field(default_factory=lambda: array("b"))       # 1, 0, or -1 (no label)
    rows_read: int = 0
    blank_lines: int = 0
    empty_cells: int = 0
    refused: Refusals = field(default_factory=Refusals)
    out_of_order: Refusals = field(default_factory=Refusals)        # kept and sent; counted here

    def __len__(self) -> int:
        return len(self.times)

    def mapping_lines(self) -> list[str]:
        lines = [f"  {column.sensor:<24} <- {column.header!r}"
                 + (f" ({column.unit})" if column.unit else "") + (f" [{column.how}]" if column.how != "named" else "")
                 for column in self.sensors]
        for kind, columns in (("labels, not sent", self.label_columns), ("text, not sent", self.text_columns),
                              ("ignored", self.ignored_columns)):
            if columns:
                lines.append(f"  ({kind}: {', '.join(map(repr, columns))})")
        return lines


def _sample_text(path: Path, where: str) -> tuple[str, str]:
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except IsADirectoryError:
        raise CsvError(f"{where}: is a folder; give the CSV files in it (e.g. {path}/*.csv)") from None
    except FileNotFoundError:
        raise CsvError(f"{where}: no such file; check the path (relative paths start from the current folder)") from None
    except OSError as error:
        raise CsvError(f"{where}: cannot be opened ({error.strerror}); check its permissions") from None
    if not head.strip():
        raise CsvError(f"{where}: the file is empty; export the series with a header row and one row per time")
    if b"\x00" in head:
        raise CsvError(f"{where}: not a text file (it holds NUL bytes; a spreadsheet or a UTF-16 export?): "
                       "export it as CSV in UTF-8")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return codecs.getincrementaldecoder(encoding)().decode(head, final=False), encoding
        except UnicodeDecodeError:
            continue
    raise CsvError(f"{where}: not UTF-8 or Windows-1252 text: export it as CSV in UTF-8")


def sniff_separator(lines: list[str], where: str) -> str:
    """The separator that splits the header into the most fields and most sampled lines into as many
    (a few short or long rows are refused later, line by line, not taken for another separator)."""
    best, best_fields, splits = None, 1, False
    for separator in SEPARATORS:
        rows = [row for row in csv.reader(lines, delimiter=separator) if row and any(cell.strip() for cell in row)]
        if not rows:
            continue
        fields = len(rows[0])
        splits = splits or fields > 1
        matching = sum(1 for row in rows[1:] if len(row) == fields)
        if fields > best_fields and matching >= 0.8 * (len(rows) - 1):
            best, best_fields = separator, fields
    if not splits:
        raise CsvError(f"{where}: one column only ({lines[0][:80]!r}): the file needs a time column and at least "
                       "one sensor column, separated by commas, semicolons or tabs (or pass --separator)")
    if best is None:
        raise CsvError(f"{where}: cannot tell the separator (comma, semicolon or tab) from the header "
                       f"{lines[0][:120]!r} and the next lines, which split into different numbers of fields: "
                       "pass --separator")
    return best


def _find_column(header: list[str], wanted: str, option: str, where: str) -> int:
    for index, name in enumerate(header):
        if name == wanted:
            return index
    for index, name in enumerate(header):
        if name.strip().lower() == wanted.strip().lower():
            return index
    raise CsvError(f"{where}: {option} {wanted!r} is not a column; the columns are "
                   f"{', '.join(map(repr, header))}")


def _time_column(header: list[str], first_cells: list[list[str]], options: ReadOptions,
                 where: str) -> tuple[int, ...]:
    """The time column's index, or a date column's and a time column's."""
    if options.time_column:
        if "+" in options.time_column and options.time_column not in header:
            day, clock = options.time_column.split("+", 1)
            return (_find_column(header, day, "--time-column", where),
                    _find_column(header, clock, "--time-column", where))
        return (_find_column(header, options.time_column, "--time-column", where),)
    if not options.time_format:
        both = _date_and_time(header, first_cells)
        if both:
            return both
    names = [_normalised(name) for name in header]
    for wanted in TIME_NAMES:
        if wanted in names:
            return (names.index(wanted),)
    for index, name in enumerate(names):
        # `Sample Time`, `Date/Time (UTC)`; but not `Last Update` unless it holds times.
        cells = [row[index].strip() for row in first_cells if row[index].strip()]
        if ("time" in name or "date" in name) and cells and all(
                _clock_like(cell, options.time_format) or _epoch_like(cell) for cell in cells):
            return (index,)
    # No name says time: a first column of calendar times is one.
    cells = [row[0].strip() for row in first_cells if row and row[0].strip()]
    if cells and all(_clock_like(cell, options.time_format) for cell in cells):
        return (0,)
    raise CsvError(f"{where}: no time column (none of {', '.join(map(repr, header))} is named like "
                   "time, timestamp or date): name it with --time-column")


def _iso(text: str) -> datetime:
    """ISO 8601, and the `2026/03/09 10:00:00` of many exports."""
    if text[4:5] == "/" and text[7:8] == "/":
        text = text.replace("/", "-", 2)
    return datetime.fromisoformat(text)


def _clock_like(text: str, pattern: str | None) -> bool:
    try:
        datetime.strptime(text, pattern) if pattern else _iso(text)
    except ValueError:
        return False
    return True


def _date_and_time(header: list[str], first_cells: list[list[str]]) -> tuple[int, int] | None:
    """A `Date` column of days and a `Time` column of clock times, as PLC loggers write them."""
    names = [_normalised(name) for name in header]
    if "date" not in names or "time" not in names:
        return None
    day, clock = names.index("date"), names.index("time")
    pairs = [(row[day].strip(), row[clock].strip()) for row in first_cells if row[day].strip()]
    try:
        for date_text, time_text in pairs:
            _iso(date_text)
            dt_time.fromisoformat(time_text)
    except ValueError:
        return None
    return (day, clock) if pairs and all(len(date_text) <= 10 for date_text, _ in pairs) else None


def _epoch_like(text: str) -> bool:
    # 1e8 s is 1973: smaller numbers in a column named like time are counts or durations.
    return bool(_NUMBER.match(text)) and float(text) >= 1e8


def _number(text: str, decimal_comma: bool) -> float | None:
    try:
        return float(text)
    except ValueError:
        if decimal_comma and _DECIMAL_COMMA.match(text):
            return float(text.replace(",", "."))
        return None


def default_device_id(path: Path) -> str:
    """A device id from the file name (`Line 3 press.csv` -> `Line-3-press`), as the format allows."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", path.stem).strip("-")[:64]
    return name or "device"


def read_series(path: Path, options: ReadOptions | None = None) -> Series:
    """Read one CSV file; CsvError (naming the file and the fix) when it cannot be read as a series."""
    options = options or ReadOptions()
    where = str(path)
    text, encoding = _sample_text(path, where)
    sample_lines = text.splitlines()[:SNIFF_LINES + 1]
    if len(sample_lines) > SNIFF_LINES:
        sample_lines = sample_lines[:-1]  # the last one may be cut by the sample's end
    if options.separator:
        separator = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t"}.get(options.separator,
                                                                                   options.separator)
        if len(separator) != 1:
            raise CsvError(f"--separator {options.separator!r}: one character, or comma, semicolon, tab")
    else:
        separator = sniff_separator(sample_lines, where)
    sampled = list(csv.reader(text.splitlines()[:SAMPLE_ROWS + 1], delimiter=separator))
    header = [cell.strip() for cell in sampled[0]]
    if len(header) < 2:
        raise CsvError(f"{where}: one column only ({header[0][:80]!r}): the file needs a time column and at least "
                       "one sensor column; pass --separator if the fields are separated by something else")
    first_cells = [row for row in sampled[1:] if len(row) == len(header)]
    time_indices = _time_column(header, first_cells, options, where)
    time_format = detect_time_format([_time_text(row, time_indices) for row in first_cells[:SNIFF_LINES]],
                                     options.timezone, options.time_format, where)
    device_index = (_find_column(header, options.device_column, "--device-column", where)
                    if options.device_column else None)
    labels_index = _find_column(header, options.labels, "--labels", where) if options.labels else None
    decimal_comma = separator != ","

    # Which columns are sensors, and their names.
    overrides = {_find_column(header, column, "--sensor", where): name for name, column in options.sensors.items()}
    for name in options.sensors:
        if not SENSOR_NAME_PATTERN.match(name):
            raise CsvError(f"--sensor {name}=...: a sensor name must match {SENSOR_NAME_PATTERN.pattern} "
                           "(lower case, digits and _, starting with a letter, at most 32)")
    ignored = {_find_column(header, column, "--ignore-column", where) for column in options.ignore}
    known = options.known_columns if options.known_columns and set(options.known_columns) <= set(header) else {}
    label_columns, text_columns, ignored_columns, sensors = [], [], [], []
    used: set[str] = set(options.sensors)
    for index, name in enumerate(header):
        if index in time_indices or index == device_index:
            continue
        if index in ignored:
            ignored_columns.append(name)
            continue
        if not name and not any(row[index].strip() for row in first_cells):
            continue  # the empty field after a trailing separator
        if index in overrides:
            sensors.append(SensorColumn(name, index, overrides[index], split_unit(name)[1], "--sensor"))
            continue
        if index == labels_index or _normalised(name) in LABEL_NAMES:
            label_columns.append(name)
            continue
        cells = [row[index].strip() for row in first_cells if row[index].strip()]
        if cells and not any(_number(cell, decimal_comma) is not None for cell in cells):
            text_columns.append(name)
            continue
        if name in known:
            sensor, unit, how = known[name], None, "the export's known names"
        else:
            (sensor, unit), how = sensor_name(name), "named"
        base, suffix = sensor, 2
        while sensor in used:
            sensor = f"{base[:29]}_{suffix}"
            suffix += 1
        used.add(sensor)
        sensors.append(SensorColumn(name, index, sensor, unit, how))
    if not sensors:
        raise CsvError(f"{where}: no sensor column (the columns are {', '.join(map(repr, header))}; label and text "
                       "columns are not sensors): name the sensors with --sensor name=column")
    if len(sensors) > MAX_SENSORS_PER_READING:
        raise CsvError(f"{where}: {len(sensors)} sensor columns, a device message carries at most "
                       f"{MAX_SENSORS_PER_READING}: split the file, or leave columns out with --ignore-column")
    sensors.sort(key=lambda column: column.index)
    series = Series(path=path, separator=separator, encoding=encoding,
                    time_column=" + ".join(header[index] for index in time_indices),
                    time_format=time_format, device_column=header[device_index] if device_index is not None else None,
                    sensors=sensors, label_columns=label_columns, text_columns=text_columns,
                    ignored_columns=ignored_columns, labels_column=header[labels_index] if labels_index is not None
                    else None, decimal_comma=decimal_comma)
    _read_rows(series, header, time_indices, device_index, labels_index, options)
    if not len(series):
        reasons = "; ".join(series.refused.lines()) or "no data rows"
        raise CsvError(f"{where}: no row could be read ({reasons}): check the time column ({series.time_column!r}, "
                       f"read as {time_format.description}) and the separator")
    return series


def _time_text(cells: list[str], indices: tuple[int, ...]) -> str:
    if len(indices) == 1:
        return cells[indices[0]].strip()
    day, clock = (cells[index].strip() for index in indices)
    return f"{day} {clock}" if day and clock else ""


def _read_rows(series: Series, header: list[str], time_indices: tuple[int, ...], device_index: int | None,
               labels_index: int | None, options: ReadOptions) -> None:
    try:
        _read_lines(series, header, time_indices, device_index, labels_index, options)
    except UnicodeDecodeError:
        # The sample decoded, a later part does not: find the line (decoding line by line is slower, so only now).
        raise CsvError(f"{series.path}: line {_undecodable_line(series)} is not {series.encoding} text, as the lines "
                       "before it are: export the whole file in one encoding, UTF-8 preferably") from None
    except csv.Error as error:
        raise CsvError(f"{series.path}: unreadable near line {series.rows_read + series.blank_lines + 2} "
                       f"({error}): check the quoting there, or export again") from None


def _read_lines(series: Series, header: list[str], time_indices: tuple[int, ...], device_index: int | None,
                labels_index: int | None, options: ReadOptions) -> None:
    width = len(header)
    parse_time = series.time_format.parse
    decimal_comma = series.decimal_comma
    sensor_indices = [column.index for column in series.sensors]
    sensor_cells = _cells_at(sensor_indices)
    columns = [column.values for column in series.sensors]
    pending: list[list[float]] = []  # rows read, copied into the columns every _ROWS_PER_COPY rows
    isfinite = math.isfinite
    refuse = series.refused.add
    devices: dict[str, int] = {}
    if device_index is None:
        device = options.device or default_device_id(series.path)
        if not DEVICE_ID_PATTERN.match(device):
            raise CsvError(f"{series.path}: --device {device!r} must match {DEVICE_ID_PATTERN.pattern}")
        devices[device] = 0
    last_time: dict[int, int] = {}
    times, lines, device_of, labels = series.times, series.lines, series.device_index, series.labels
    time_index = time_indices[0] if len(time_indices) == 1 else None  # one column: no call per row
    with series.path.open(newline="", encoding=series.encoding) as handle:
        reader = csv.reader(handle, delimiter=series.separator)
        next(reader, None)
        line = 1
        for cells in reader:
            line = reader.line_num
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                series.blank_lines += 1
                continue
            series.rows_read += 1
            if len(cells) != width:
                refuse(f"rows with {len(cells)} fields, the header has {width}", line)
                continue
            text = cells[time_index].strip() if time_index is not None else _time_text(cells, time_indices)
            if not text:
                refuse("rows without a time", line)
                continue
            timestamp = parse_time(text)
            if timestamp is None:
                refuse(f"rows whose time is not {series.time_format.name}", line)
                continue
            if device_index is None:
                device_number = 0
            else:
                device = cells[device_index].strip()
                device_number = devices.get(device)
                if device_number is None:
                    if not device:
                        refuse("rows without a device id", line)
                        continue
                    if not DEVICE_ID_PATTERN.match(device):
                        refuse(f"rows whose device id is not {DEVICE_ID_PATTERN.pattern}", line)
                        continue
                    device_number = devices[device] = len(devices)
            try:
                # The common row in C: every sensor cell a finite number as float() reads it (a finite
                # sum has no NaN or infinity in it). Anything else, cell by cell below.
                values = list(map(float, sensor_cells(cells)))
                if not isfinite(sum(values)):
                    raise ValueError("not all finite")
                bad, present = None, len(values)
            except ValueError:
                values, present, bad = _row_values(cells, sensor_indices, header, decimal_comma)
            if bad is not None:
                refuse(f"rows with a non-numeric value (first in {bad!r})", line)
                continue
            if not present:
                refuse("rows without any sensor value", line)
                continue
            previous = last_time.get(device_number)
            if previous is not None and timestamp <= previous:
                series.out_of_order.add("rows out of time order (sent in file order)" if timestamp < previous
                                        else "rows repeating the previous time", line)
            else:
                last_time[device_number] = timestamp
            series.empty_cells += len(values) - present
            pending.append(values)
            if len(pending) == _ROWS_PER_COPY:
                _copy_columns(pending, columns)
            times.append(timestamp)
            lines.append(line)
            device_of.append(device_number)
            if labels_index is not None:
                labels.append(_label(cells[labels_index]))
    _copy_columns(pending, columns)
    series.devices = list(devices)


# Rows held before their values are copied into the columns at once (array.extend of each column's part).
_ROWS_PER_COPY = 4096


def _copy_columns(rows: list[list[float]], columns: list[array]) -> None:
    for column, values in zip(columns, zip(*rows)):
        column.extend(values)
    rows.clear()


def _cells_at(indices: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """The cells at these indices of a row, as a tuple."""
    if len(indices) == 1:
        (index,) = indices
        return lambda cells: (cells[index],)
    return operator.itemgetter(*indices)


def _row_values(cells: list[str], indices: list[int], header: list[str],
                decimal_comma: bool) -> tuple[list[float], int, str | None]:
    """A row's sensor values cell by cell (NaN for an empty cell), how many are present, and the header of
    the first cell that is not a finite number (None if all are)."""
    values = []
    present = 0
    for index in indices:
        cell = cells[index]
        if not cell or cell.isspace():
            values.append(math.nan)
            continue
        try:
            value = float(cell)
        except ValueError:
            value = _number(cell, decimal_comma)
            if value is None:
                return values, present, header[index]
        if not math.isfinite(value):  # NaN and infinities are not JSON: the rule would refuse the message
            return values, present, header[index]
        values.append(value)
        present += 1
    return values, present, None


def _undecodable_line(series: Series) -> int:
    with series.path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode(series.encoding)
            except UnicodeDecodeError:
                return number
    return 0


def _label(text: str) -> int:
    text = text.strip().lower()
    if text in ("", "nan", "na", "null", "none"):
        return -1
    if text in ("true", "yes", "anomaly", "abnormal", "fault"):
        return 1
    if text in ("false", "no", "normal", "ok"):
        return 0
    try:
        return 1 if float(text.replace(",", ".")) > 0 else 0
    except ValueError:
        return -1

"""Run SQL over a local run's archive with DuckDB, as Athena runs it over the real one.

    python -m local.query "SELECT device_id, count(*) AS n FROM readings GROUP BY device_id"
    python -m local.query --archive other-run/archive --param press-001 ... "<SQL with ? parameters>"

The views `readings` and `quarantine` have the Glue tables' names and columns
(components/archive_tables.py, the one declaration both use), partition
columns `dt` and `hour` included, so a query tried here runs unchanged in the
stack's Athena workgroup. DuckDB lacks a few Trino functions the named queries
use; they are defined here with Trino's meaning: `from_unixtime`,
`to_unixtime`, `date_format` (MySQL-style `%i`/`%s` for minutes and seconds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from components.archive_tables import PARTITION_KEYS, TABLES, ArchiveTable
from local.archive import latest_archive

# Trino functions by DuckDB expressions, evaluated in UTC as Athena's are.
TRINO_MACROS = {
    "from_unixtime": ("seconds", "to_timestamp(seconds)"),
    "to_unixtime": ("ts", "epoch(ts)"),
    "date_format": ("ts, format",
                    "strftime(ts, replace(replace(replace(format, '%M', '%B'), '%i', '%M'), '%s', '%S'))"),
}


class QueryError(Exception):
    """A message for the user, without a traceback."""


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _struct(mapping: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_quoted(key)}: {_quoted(value)}" for key, value in mapping.items()) + "}"


def _view_sql(table: ArchiveTable, archive: Path) -> str:
    folder = archive / table.prefix
    names = [*table.column_names, *(key.name for key in PARTITION_KEYS)]
    selected = ", ".join(f'"{name}"' for name in names)
    if not any(folder.glob("dt=*/hour=*/*")):
        # No objects (a run without bad records has no quarantine): the same columns, no rows.
        empty = ", ".join(f'CAST(NULL AS {column.duckdb_type}) AS "{column.name}"'
                          for column in (*table.columns, *PARTITION_KEYS))
        return f"CREATE VIEW {table.name} AS SELECT {empty} WHERE false"
    # Athena reads every object under a partition's location, gunzipping by extension.
    pattern = str(folder / "dt=*" / "hour=*" / "*")
    columns = {column.name: column.duckdb_type for column in table.columns}
    partitions = {key.name: key.duckdb_type for key in PARTITION_KEYS}
    return (f"CREATE VIEW {table.name} AS SELECT {selected} FROM read_json({_quoted(pattern)}, "
            f"format='newline_delimited', compression='auto', hive_partitioning=true, "
            f"hive_types={_struct(partitions)}, columns={_struct(columns)})")


def connect(archive: Path):
    """A DuckDB connection with the archive's tables as views, and Trino's functions."""
    import duckdb

    if not archive.is_dir():
        raise QueryError(f"no archive at {archive}: run ./run-local.sh first (it keeps the run's S3 objects "
                         "there), or pass --archive <folder of a run>/archive")
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone = 'UTC'")
    for name, (parameters, body) in TRINO_MACROS.items():
        connection.execute(f"CREATE MACRO {name}({parameters}) AS {body}")
    for table in TABLES:
        connection.execute(_view_sql(table, archive))
    return connection


def run(sql: str, archive: Path, parameters: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of `sql` over the archive at `archive`."""
    import duckdb

    connection = connect(archive)
    try:
        cursor = connection.execute(sql, list(parameters))
        if cursor.description is None:
            return [], []
        return [column[0] for column in cursor.description], cursor.fetchall()
    except duckdb.Error as error:
        raise QueryError(f"the query failed: {str(error).splitlines()[0]}") from None
    finally:
        connection.close()


def render(columns: list[str], rows: list[tuple]) -> str:
    """An aligned text table, then the row count."""
    cells = [columns, *[["NULL" if value is None else str(value) for value in row] for row in rows]]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines + [f"({len(rows)} row{'s' if len(rows) != 1 else ''})"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.query", description=__doc__.split("\n\n")[0])
    parser.add_argument("sql", help="the query: tables readings and quarantine, as in Athena")
    parser.add_argument("--archive", type=Path, default=None,
                        help=f"a run's archive folder (default: the latest run's, {latest_archive()})")
    parser.add_argument("--param", action="append", default=[], metavar="VALUE",
                        help="a value for the next ? in the SQL, in order (repeat for each)")
    args = parser.parse_args(argv)
    try:
        columns, rows = run(args.sql, args.archive or latest_archive(), args.param)
    except QueryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render(columns, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

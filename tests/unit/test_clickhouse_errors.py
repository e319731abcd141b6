import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from sinks.clickhouse import redact, translate
from sinks.errors import ClickHouseError, ClickHouseRejectedError, ClickHouseUnavailableError


@pytest.mark.parametrize(
    ("exc", "kind", "code", "name"),
    [
        (DatabaseError("Code: 252. DB::Exception: Too many parts (TOO_MANY_PARTS)"),
         ClickHouseUnavailableError, 252, "TOO_MANY_PARTS"),
        (DatabaseError("Code: 60. DB::Exception: Table pulse.events does not exist. "
                       "(UNKNOWN_TABLE)"), ClickHouseUnavailableError, 60, "UNKNOWN_TABLE"),
        (OperationalError("connection refused"), ClickHouseUnavailableError, None, None),
        (DatabaseError("Code: 27. DB::Exception: Cannot parse input (CANNOT_PARSE_INPUT)"),
         ClickHouseRejectedError, 27, "CANNOT_PARSE_INPUT"),
        (ValueError("badly formed hexadecimal UUID string"), ClickHouseRejectedError, None,
         "BAD_VALUE"),
        (RuntimeError("something else"), ClickHouseError, None, None),
    ],
)  # fmt: skip
def test_errors_are_sorted_by_what_happens_next(exc, kind, code, name):
    err = translate(exc, "inserting")
    assert type(err) is kind
    assert (err.code, err.name) == (code, name)
    assert str(err).startswith("inserting: ")


def test_passwords_are_redacted():
    assert (
        redact("https://pulse:s3cret@ch.example:8443/db") == "https://pulse:***@ch.example:8443/db"
    )
    assert redact("chdb:///var/lib/pulse") == "chdb:///var/lib/pulse"

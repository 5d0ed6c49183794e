"""The rights-request clock (GDPR Art 12(3)): one calendar month from receipt, counted to
the same date of the next month (the month's last day where it has no such date), due by
the end of that day in UTC; one extension by two further months, with a reason, decided
within the first month; what a request may ask of a person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from probity.domain.rights import (
    RequestKind,
    RequestStatus,
    add_months,
    clean_identifiers,
    days_until,
    due_at,
    extension_problem,
    handling_days,
    is_overdue,
    parse_identifiers,
    photo_problem,
)


def at(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("filed", "due"),
    [
        (at(2026, 3, 14), at(2026, 4, 14)),
        (at(2026, 1, 31), at(2026, 2, 28)),  # no 31 February: the month's last day
        (at(2028, 1, 31), at(2028, 2, 29)),  # a leap year
        (at(2026, 12, 15), at(2027, 1, 15)),  # across the year
        (at(2026, 5, 31), at(2026, 6, 30)),
        (at(2026, 2, 28), at(2026, 3, 28)),
    ],
)
def test_one_calendar_month_due_by_the_end_of_the_day(filed: datetime, due: datetime) -> None:
    assert due_at(filed) == due.replace(hour=23, minute=59, second=59)


def test_extended_is_three_months_from_receipt() -> None:
    assert due_at(at(2026, 11, 30), extended=True) == datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC)
    assert due_at(at(2026, 1, 10), extended=True).date().isoformat() == "2026-04-10"


def test_the_day_is_counted_in_utc() -> None:
    # 00:30 on 1 March in UTC+02:00 is still 28 February in UTC.
    filed = datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert due_at(filed).date().isoformat() == "2026-03-28"


def test_add_months_keeps_the_time_of_day() -> None:
    assert add_months(at(2026, 10, 31, 7), 4) == at(2027, 2, 28, 7)
    assert add_months(at(2026, 1, 15), 12) == at(2027, 1, 15)


def test_overdue_and_days_left() -> None:
    due = due_at(at(2026, 3, 14))
    assert not is_overdue(status=RequestStatus.OPEN, due=due, now=due)
    assert is_overdue(status=RequestStatus.OPEN, due=due, now=due + timedelta(seconds=1))
    assert is_overdue(status=RequestStatus.EXTENDED, due=due, now=due + timedelta(days=1))
    late = due + timedelta(days=3)
    assert not is_overdue(status=RequestStatus.CLOSED, due=due, now=late)
    assert not is_overdue(status=RequestStatus.REFUSED, due=due, now=late)
    assert days_until(due, at(2026, 4, 14, 1)) == 0
    assert days_until(due, at(2026, 4, 4)) == 10
    assert days_until(due, late) == -3


def test_one_extension_with_a_reason_within_the_first_month() -> None:
    filed = at(2026, 3, 14)
    reason = "complex, 3 galleries"
    open_ = RequestStatus.OPEN
    in_time = filed + timedelta(days=20)
    late = due_at(filed) + timedelta(minutes=1)
    assert extension_problem(status=open_, filed_at=filed, now=in_time, reason=reason) is None
    assert "one month of receipt" in str(
        extension_problem(status=open_, filed_at=filed, now=late, reason=reason)
    )
    assert "already been extended" in str(
        extension_problem(
            status=RequestStatus.EXTENDED, filed_at=filed, now=filed, reason="again, please"
        )
    )
    assert "reason" in str(
        extension_problem(status=RequestStatus.OPEN, filed_at=filed, now=filed, reason=" ")
    )
    assert "closed" in str(
        extension_problem(status=RequestStatus.CLOSED, filed_at=filed, now=filed, reason="x" * 9)
    )


def test_handling_days_to_one_decimal() -> None:
    assert handling_days(at(2026, 3, 1), at(2026, 3, 11, 22)) == 10.5


def test_a_request_asks_only_for_what_it_needs() -> None:
    ref = {"reference": "CRN-1"}
    assert photo_problem(RequestKind.ACCESS, ref, has_photo=False) is None
    assert photo_problem(RequestKind.ERASURE, {"gallery": "custody"}, has_photo=True) is None
    assert "not needed" in str(photo_problem(RequestKind.ACCESS, ref, has_photo=True))
    assert "finds the record" in str(photo_problem(RequestKind.ERASURE, {}, has_photo=False))
    assert "needs one photo" in str(photo_problem(RequestKind.OBJECTION, ref, has_photo=False))
    assert photo_problem(RequestKind.OBJECTION, {}, has_photo=True) is None


def test_identifiers() -> None:
    assert clean_identifiers({" Reference ": " CRN-1 ", "gallery": " "}) == {"reference": "CRN-1"}
    assert parse_identifiers(["reference=CRN=1", "gallery=custody"]) == {
        "reference": "CRN=1",
        "gallery": "custody",
    }
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_identifiers(["CRN-1"])
    with pytest.raises(ValueError, match="identifier name"):
        clean_identifiers({"face vector": "x"})
    with pytest.raises(ValueError, match="longer than"):
        clean_identifiers({"reference": "x" * 201})
    with pytest.raises(ValueError, match="at most"):
        clean_identifiers({f"k{i}": "v" for i in range(11)})

"""Hypothesis strategies shared by the tests: export tickets of every JSON shape."""

from __future__ import annotations

from datetime import UTC

from hypothesis import strategies as st

# finite numbers only: that is what a RawTicket holds (the parser dead-letters 1e400)
json_scalar = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_any = st.recursive(
    json_scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
int64 = st.integers(-(2**63), 2**63 - 1)
iso = st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z"))
maybe = st.none().__or__
field_entry = st.fixed_dictionaries(
    {"id": int64, "value": json_any | st.lists(st.text(), max_size=3)}
)
OPTIONAL = {
    "url": maybe(st.text()),
    "external_id": maybe(st.text()),
    "via": maybe(
        st.fixed_dictionaries(
            {"channel": maybe(st.text(max_size=10))}, optional={"source": json_any}
        )
    ),
    "created_at": maybe(iso),
    "updated_at": maybe(iso),
    "due_at": maybe(iso),
    "subject": maybe(st.text()),
    "status": maybe(
        st.sampled_from(["new", "open", "pending", "hold", "solved", "closed", "deleted"])
    ),
    "requester_id": maybe(int64),
    "collaborator_ids": maybe(st.lists(int64, max_size=3)),
    "has_incidents": maybe(st.booleans()),
    "tags": maybe(st.lists(st.text(), max_size=3)),
    "custom_fields": maybe(st.lists(field_entry, max_size=4)),
    "fields": maybe(st.lists(field_entry, max_size=4)),
    "satisfaction_rating": json_any,
    "future_field": json_any,
    "zz_other_new": json_any,
}
tickets = st.fixed_dictionaries(
    {"id": st.integers(0, 2**63 - 1), "generated_timestamp": int64}, optional=OPTIONAL
)

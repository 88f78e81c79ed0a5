"""The compiled Avro writer: fastavro's exact bytes, or a WriteError that hands over to it."""

from __future__ import annotations

import ast
import io
import math
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.avro_mapping import SourceInfo, change_record, dead_letter_record
from producer.avro_writer import (
    UnsupportedSchemaError,
    WriteError,
    compile_writer,
    generated_source,
    schema_writer,
)
from producer.wire import DEAD_LETTER_SCHEMA, KEY_SCHEMA, VALUE_SCHEMA, schema_json
from tests.strategies import tickets

SOURCE = SourceInfo("acme", 1709500000, 1709574011, "time", datetime(2024, 3, 4, tzinfo=UTC))
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def fastavro_bytes(schema: Any, datum: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema, named_schemas={}), datum)
    return out.getvalue()


def assert_same_bytes(schema: Any, datum: Any) -> None:
    assert compile_writer(schema)(datum) == fastavro_bytes(schema, datum)


RECORD = {
    "type": "record",
    "name": "Outer",
    "namespace": "t.ns",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "op", "type": {"type": "enum", "name": "Op", "symbols": ["a", "b", "c"]}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {
            "name": "inner",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [{"name": "x", "type": "double"}, {"name": "flag", "type": "boolean"}],
            },
        },
        {"name": "again", "type": ["null", "Inner"], "default": None},  # a named reference
        {
            "name": "any",
            "type": [
                "null",
                "boolean",
                "long",
                "double",
                "string",
                {"type": "array", "items": "string"},
                "Inner",
            ],
            "default": None,
        },
        {"name": "ids", "type": {"type": "array", "items": "long"}, "default": []},
    ],
}
INNER = {"x": 1.5, "flag": True}
BASE = {"id": 7, "op": "b", "at": None, "inner": INNER}  # the rest take their defaults


# --- every construct, against fastavro ----------------------------------------------


@pytest.mark.parametrize(
    "value",
    [0, 1, -1, 63, 64, -64, -65, 127, 128, 8191, 8192, 2**31, -(2**31), INT64_MAX, INT64_MIN],
)
def test_longs_at_every_varint_boundary(value: int) -> None:
    assert_same_bytes("long", value)


@given(st.integers(INT64_MIN, INT64_MAX))
def test_any_int64(value: int) -> None:
    assert_same_bytes("long", value)
    assert_same_bytes(["null", "long"], value)


@given(st.floats())
def test_any_double(value: float) -> None:
    assert_same_bytes("double", value)


@pytest.mark.parametrize("value", [math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308])
def test_double_edges(value: float) -> None:
    assert_same_bytes("double", value)


def test_a_double_field_takes_an_int_as_fastavro_does() -> None:
    assert_same_bytes("double", 3)


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 8191, 8192, 100_000])
def test_strings_of_every_length_class(size: int) -> None:
    assert_same_bytes("string", "é" * (size // 2) + "x" * (size % 2))


@given(st.text())
def test_any_text(value: str) -> None:
    assert_same_bytes("string", value)
    assert_same_bytes(["null", "string"], value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans(value: bool) -> None:
    assert_same_bytes("boolean", value)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 3, 4, 17, 40, 11, 123456, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),  # before the epoch
        datetime(2024, 3, 4, 19, 40, tzinfo=timezone(timedelta(hours=2))),
        1_709_574_011_123,  # an int passes through
    ],
)
def test_timestamp_millis(moment: Any) -> None:
    assert_same_bytes({"type": "long", "logicalType": "timestamp-millis"}, moment)
    assert_same_bytes(RECORD, {**BASE, "at": moment})


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"note": "hello", "ids": [1, -2, 2**40]},
        {"op": "c", "again": INNER},
        {"again": ("t.ns.Inner", INNER)},
        {"any": True},
        {"any": 12},
        {"any": 2.5},
        {"any": "text"},
        {"any": ["a", "b"]},
        {"any": []},
        {"any": INNER},
        {"any": ("t.ns.Inner", INNER)},
        {"any": ("array", ["x"])},
        {"any": ("double", 3)},  # a tag picks the branch, even for an int
    ],
)
def test_records_unions_enums_arrays_and_defaults(changes: dict[str, Any]) -> None:
    assert_same_bytes(RECORD, {**BASE, **changes})


# --- our schemas, over generated tickets -------------------------------------------


@pytest.mark.parametrize("name", [KEY_SCHEMA, VALUE_SCHEMA, DEAD_LETTER_SCHEMA])
def test_our_schemas_all_compile(name: str) -> None:
    compile_writer(schema_json(name))  # raises UnsupportedSchemaError otherwise


@settings(max_examples=300)
@given(tickets, st.sampled_from(["create", "update", "delete"]), st.booleans())
def test_generated_tickets_encode_to_fastavros_bytes(
    ticket: dict[str, Any], op: str, tagged: bool
) -> None:
    record = change_record(op, ticket, SOURCE, tagged=tagged)
    assert_same_bytes(schema_json(VALUE_SCHEMA), record)


@given(st.text(), st.none() | st.integers(INT64_MIN, INT64_MAX))
def test_dead_letters_encode_to_fastavros_bytes(reason: str, ticket_id: int | None) -> None:
    record = dead_letter_record(
        ticket_id=ticket_id,
        reason=reason,
        raw_json="{}",
        account="acme",
        generated_timestamp=None,
        failed_at=1_709_574_011.5,
    )
    assert_same_bytes(schema_json(DEAD_LETTER_SCHEMA), record)


# --- what the compiled writer declines, fastavro decides ----------------------------


@pytest.mark.parametrize(
    ("schema", "datum"),
    [
        ("long", True),  # bool is an int in Python, not in Avro
        ("long", 1.0),
        ("long", 2**63),
        ("string", b"bytes"),
        ("string", "\ud800"),  # a lone surrogate cannot be UTF-8
        ("boolean", 1),
        ("double", "1.5"),
        ("double", 2**1100),  # too large for a double
        ("null", 0),
        (RECORD, {**BASE, "op": "z"}),
        (RECORD, {**BASE, "id": None}),
        (RECORD, {k: v for k, v in BASE.items() if k != "id"}),  # required, no default
        (RECORD, {**BASE, "any": {1, 2}}),
        (RECORD, {**BASE, "note": ("long", 1)}),  # a tag the union does not have
        (RECORD, [1, 2]),
        ({"type": "long", "logicalType": "timestamp-millis"}, datetime(2024, 1, 1)),  # naive
    ],
)
def test_declined_datums_raise_write_error(schema: Any, datum: Any) -> None:
    with pytest.raises(WriteError):
        compile_writer(schema)(datum)


def test_a_bool_is_declined_even_after_1_was_written() -> None:
    write = compile_writer("long")
    assert write(1) == b"\x02"
    with pytest.raises(WriteError):
        write(True)  # True == 1 and hashes alike: the cached bytes must not be reused


def test_a_declined_datum_gets_fastavros_answer_bytes_or_refusal() -> None:
    write = schema_writer(RECORD, fastavro.parse_schema(RECORD))
    as_mapping = MappingProxyType(BASE)  # not a dict: declined, but fastavro writes it
    assert write(as_mapping) == fastavro_bytes(RECORD, BASE)
    with pytest.raises(ValueError):
        write({**BASE, "op": "z"})  # and fastavro's refusal is what the caller sees


def test_an_ambiguous_untagged_union_value_is_left_to_fastavro() -> None:
    point = {"type": "record", "name": "P", "fields": [{"name": "x", "type": "long"}]}
    line = {
        "type": "record",
        "name": "L",
        "fields": [{"name": "x", "type": "long"}, {"name": "y", "type": "long"}],
    }
    schema = ["null", point, line]  # a dict could be either: fastavro picks by fields
    with pytest.raises(WriteError):
        compile_writer(schema)({"x": 1, "y": 2})
    write = schema_writer(schema, fastavro.parse_schema(schema))
    assert write({"x": 1, "y": 2}) == fastavro_bytes(schema, {"x": 1, "y": 2})
    assert write(("P", {"x": 1})) == fastavro_bytes(schema, ("P", {"x": 1}))


@pytest.mark.parametrize(
    ("schema", "datum"),
    [
        ("int", 3),
        ("float", 1.5),
        ("bytes", b"ab"),
        ({"type": "map", "values": "long"}, {"a": 1}),
        ({"type": "fixed", "name": "F", "size": 4}, b"abcd"),
        ({"type": "long", "logicalType": "timestamp-micros"}, 3),
        (["null", {"type": "array", "items": "long"}, {"type": "array", "items": "string"}], ["a"]),
    ],
)
def test_schemas_beyond_its_scope_are_refused_and_fastavro_writes_them(
    schema: Any, datum: Any
) -> None:
    with pytest.raises(UnsupportedSchemaError):
        compile_writer(schema)
    write = schema_writer(schema, fastavro.parse_schema(schema))
    assert write(datum) == fastavro_bytes(schema, datum)


# --- shapes our schemas do not have, which the generator must still get right ---------

LINKED = {
    "type": "record",
    "name": "Node",
    "namespace": "t.list",
    "fields": [
        {"name": "value", "type": "long"},
        {"name": "next", "type": ["null", "Node"], "default": None},
        {"name": "children", "type": {"type": "array", "items": "t.list.Node"}, "default": []},
    ],
}


def linked(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"value": 0}
    for n in range(1, depth + 1):
        node = {"value": n, "next": node, "children": [{"value": -n}, node]}
    return node


@pytest.mark.parametrize("depth", [0, 1, 5])
def test_a_record_that_refers_to_itself(depth: int) -> None:
    assert_same_bytes(LINKED, linked(depth))
    assert "def write_record_" in generated_source(LINKED)  # recursion calls a function


def test_arrays_nested_deeper_than_python_nests_loops() -> None:
    # CPython refuses more than 20 nested loops in one function: deep records call out
    schema: Any = {"type": "record", "name": "Leaf", "fields": [{"name": "x", "type": "long"}]}
    datum: Any = {"x": 3}
    for level in range(25):
        schema = {
            "type": "record",
            "name": f"Level{level}",
            "fields": [{"name": "items", "type": {"type": "array", "items": schema}}],
        }
        datum = {"items": [datum]}
    assert_same_bytes(schema, datum)


def test_namespaces_are_inherited_and_overridden() -> None:
    schema = {
        "type": "record",
        "name": "A",
        "namespace": "outer",
        "fields": [
            {
                "name": "b",
                "type": {
                    "type": "record",
                    "name": "B",
                    "namespace": "inner",
                    "fields": [
                        {"name": "c", "type": {"type": "enum", "name": "C", "symbols": ["x"]}}
                    ],
                },
            },
            {"name": "again", "type": ["null", "inner.B", "inner.C"]},
            {"name": "full", "type": ["null", {"type": "record", "name": "x.D", "fields": []}]},
        ],
    }
    datum = {"b": {"c": "x"}, "again": ("inner.C", "x"), "full": {}}
    assert_same_bytes(schema, datum)
    assert_same_bytes(schema, {**datum, "again": ("inner.B", {"c": "x"}), "full": ("x.D", {})})


def test_the_generated_source_carries_no_schema_text_but_names() -> None:
    # defaults and symbols reach the code as constants, never spliced into the source
    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "s", "type": "string", "default": "'); import os; ('"},
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["__import__"]}},
        ],
    }
    source = generated_source(schema)
    assert "import os" not in source
    assert "__import__" not in source
    datum = {"e": "__import__"}
    assert compile_writer(schema)(datum) == fastavro_bytes(schema, datum)


def nested_nullable_records(levels: int) -> tuple[Any, Any]:
    schema: Any = "long"
    datum: Any = 5
    for level in range(levels):
        record = {"type": "record", "name": f"N{level}", "fields": [{"name": "x", "type": schema}]}
        schema = ["null", record]
        datum = {"x": datum}
    return schema, datum


def test_the_source_grows_linearly_with_nesting() -> None:
    # a union that wrote its branch twice (tagged, untagged) doubled the source per level
    small, large = (len(generated_source(nested_nullable_records(n)[0])) for n in (6, 12))
    assert large < 3 * small


def test_records_nested_deeper_than_python_indents() -> None:
    schema, datum = nested_nullable_records(60)  # each level indents the source twice
    assert_same_bytes(schema, datum)


def test_arrays_nested_past_what_python_compiles_are_left_to_fastavro() -> None:
    schema: Any = "long"
    datum: Any = 5
    for _ in range(30):  # 30 nested loops in one function: CPython refuses to compile it
        schema = {"type": "array", "items": schema}
        datum = [datum]
    with pytest.raises(UnsupportedSchemaError):
        compile_writer(schema)
    write = schema_writer(schema, fastavro.parse_schema(schema))
    assert write(datum) == fastavro_bytes(schema, datum)


# --- found in review: each of these once gave other bytes than fastavro, or worse -----


def test_a_named_record_used_at_every_level_keeps_the_source_small() -> None:
    schema: Any = {"type": "record", "name": "R0", "fields": [{"name": "x", "type": "long"}]}
    datum: Any = {"x": 1}
    for level in range(1, 18):  # each level uses the previous record twice
        schema = {
            "type": "record",
            "name": f"R{level}",
            "fields": [{"name": "a", "type": schema}, {"name": "b", "type": f"R{level - 1}"}],
        }
        datum = {"a": datum, "b": datum}
    assert len(generated_source(schema)) < 200_000  # doubling per level: millions of lines
    assert_same_bytes(schema, datum)


def test_a_schema_name_cannot_inject_code() -> None:
    evil = "x', __import__('sys').exit(99)) or ('"
    record = {"type": "record", "name": evil, "fields": [{"name": "a", "type": "long"}]}
    schema = ["null", record]
    write = compile_writer(schema)
    with pytest.raises(WriteError):  # not SystemExit: the name stayed a string
        write(("wrong", {"a": 1}))
    names = {n.id for n in ast.walk(ast.parse(generated_source(schema))) if isinstance(n, ast.Name)}
    assert "__import__" not in names  # it occurs in string literals only


ENUM_AB = {"type": "enum", "name": "AB", "symbols": ["a", "b"]}


@pytest.mark.parametrize(
    ("schema", "datum"),
    [
        (["null", "double", "long"], 5),  # fastavro takes the first branch that validates
        (["null", "long", "double"], 5),
        (["null", ENUM_AB, "string"], "a"),
        (["null", "string", ENUM_AB], "a"),
        (["null", "long", "boolean"], True),
        (["null", "boolean", "long"], True),
        (["null", "string", "long", "double"], 2.5),
    ],
)
def test_untagged_values_take_the_branch_fastavro_takes(schema: Any, datum: Any) -> None:
    write = schema_writer(schema, fastavro.parse_schema(schema, named_schemas={}))
    assert write(datum) == fastavro_bytes(schema, datum)
    try:
        compiled = compile_writer(schema)(datum)
    except WriteError:
        return  # declined: fastavro decides, as checked above
    assert compiled == fastavro_bytes(schema, datum)


POINT = {"type": "record", "name": "P", "fields": [{"name": "x", "type": "long"}]}


@pytest.mark.parametrize(
    "schema", [["null", POINT], ["null", "long", POINT]], ids=["nullable", "union"]
)
def test_a_record_datum_naming_another_type_is_left_to_fastavro(schema: Any) -> None:
    with pytest.raises(WriteError):
        compile_writer(schema)({"x": 1, "-type": "Other"})  # fastavro reads "-type"


def test_a_null_namespace_is_no_namespace() -> None:
    record: dict[str, Any] = {"type": "record", "name": "N", "namespace": None, "fields": []}
    schema = {"type": "record", "name": "Outer", "namespace": "o", "fields": [
        {"name": "n", "type": ["null", "long", record]}]}  # fmt: skip
    assert_same_bytes(schema, {"n": ("N", {})})


def test_other_failures_while_writing_are_declines() -> None:
    with pytest.raises(WriteError):
        compile_writer(["null", "long", "string"])(([], 1))  # an unhashable tag
    deep: dict[str, Any] = {"value": 0}
    for n in range(1100):
        deep = {"value": n, "next": deep}
    with pytest.raises(WriteError):  # so schema_writer hands it to fastavro, which writes it
        compile_writer(LINKED)(deep)  # recursion past Python's stack


def test_an_enum_with_a_repeated_symbol_is_refused() -> None:
    with pytest.raises(UnsupportedSchemaError):
        compile_writer({"type": "enum", "name": "E", "symbols": ["a", "a"]})

"""PURE: our schemas compiled into Avro binary writers, byte-identical to fastavro's.

Why: fastavro's writer interprets the schema for every value, about 0.45 µs per field
even for a null. A `TicketChange` has some 60 fields (plus two entries for each custom
field), so fastavro took ~47 µs per ticket, half of the pipeline's budget at the 10,000
tickets/s target. Here a schema is compiled once into the Python source of one
straight-line function (`exec`), so writing a datum costs only its own checks and
appends: no call and no dispatch per schema node.

The scope is narrow on purpose: the types our schemas use (null, boolean, long with or
without `timestamp-millis`, double, string, enum, array, record, union).
`compile_writer` raises `UnsupportedSchemaError` for anything else. The datum
conventions are fastavro's: records are dicts (a missing key takes the field's
default), a union value may carry its branch name (`("array", [...])`),
`timestamp-millis` takes an aware datetime or an int.

The contract: the compiled writer either returns fastavro's exact bytes or raises
`WriteError`. `schema_writer` falls back to fastavro on `WriteError`, so a datum the
compiled writer declines (a naive datetime, a union value of an ambiguous type, a
wrong type) gets fastavro's answer: bytes, or fastavro's own exception. Property
tests hold the two writers to the same bytes. One known exception, which the service
never builds (its tags sit directly on union values): fastavro validates an untagged
union value before writing it, and its validation does not read tags of array, enum
or timestamp-millis branches nested inside, so it refuses such a datum; the compiled
writer writes it.

The generated source holds no value from the schema but names and branch indexes it
formats as literals (`repr`); defaults and lookup tables are passed in as constants.
`generated_source(schema)` shows what runs.
"""

from __future__ import annotations

import io
import struct
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

import fastavro

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class UnsupportedSchemaError(Exception):
    """The schema uses a construct the compiler does not handle (fastavro will)."""


class WriteError(Exception):
    """The compiled writer declines this datum; fastavro decides."""


_MISSING = object()  # the value of a record field with neither a value nor a default
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_pack_double = struct.Struct("<d").pack


def zigzag_varint(value: int) -> bytes:
    """An Avro long's bytes (`value` within int64)."""
    n = (value << 1) ^ (value >> 63)  # zigzag: small magnitudes stay short
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Ids repeat across tickets (custom field ids, groups, brands, forms, agents), so their
# encodings are remembered. Bounded: cleared when full, memory stays flat.
_VARINT_CACHE: dict[int, bytes] = {}
_VARINT_CACHE_SIZE = 1 << 16


def _long_bytes(value: Any) -> bytes:
    """An int's varint bytes, remembered; WriteError outside int64 (the caller checked
    that `value` is an int, not a bool)."""
    data = _VARINT_CACHE.get(value)
    if data is None:
        if not INT64_MIN <= value <= INT64_MAX:
            raise WriteError(f"not a long: {value!r:.40}")
        if len(_VARINT_CACHE) >= _VARINT_CACHE_SIZE:
            _VARINT_CACHE.clear()
        data = _VARINT_CACHE[value] = zigzag_varint(value)
    return data


def _timestamp_millis(value: Any) -> int:
    if type(value) is datetime:
        if value.tzinfo is None:
            raise WriteError("a naive datetime")
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    if type(value) is not int:
        raise WriteError(f"not a timestamp: {type(value).__name__}")
    return value


def _decline(what: str, value: Any) -> NoReturn:
    raise WriteError(f"not {what}: {type(value).__name__} {value!r:.40}")


_PRIMITIVES = frozenset({"null", "boolean", "long", "double", "string"})
# the Python type of an untagged union value -> the kind of branch it goes to
_PYTHON_TYPE: dict[str, type] = {
    "boolean": bool,
    "long": int,
    "double": float,
    "string": str,
    "array": list,
    "record": dict,
    "timestamp-millis": datetime,
}
# the kinds of branch whose validation in fastavro might take a value of a Python type
_MIGHT_TAKE: dict[type, frozenset[str]] = {
    bool: frozenset({"boolean", "long", "double"}),
    int: frozenset({"long", "double", "timestamp-millis"}),
    float: frozenset({"double"}),
    str: frozenset({"string", "enum"}),
    list: frozenset({"array"}),
    dict: frozenset({"record"}),
    datetime: frozenset({"timestamp-millis"}),
}
# CPython allows 20 statically nested blocks (loops) and 100 levels of indentation in one
# function: a record deeper than these bounds is written by a function of its own
_MAX_INLINE_LOOPS = 12
_MAX_INLINE_DEPTH = 40
_MAX_INLINES = 2
# a schema whose writer would be larger than this is left to fastavro
_MAX_SOURCE_CHARS = 4_000_000


def _full_name(schema: Mapping[str, Any], namespace: str) -> tuple[str, str]:
    """A named type's full name and the namespace its fields inherit."""
    name = str(schema["name"])
    if "." in name:
        return name, name.rsplit(".", 1)[0]
    space = schema.get("namespace", namespace)
    space = "" if space is None else str(space)  # null: no namespace, as in fastavro
    return f"{space}.{name}".lstrip("."), space


class _Generator:
    """Writes the source of the functions that encode one schema.

    Each `_emit_*` appends lines that encode the value held in a local variable to the
    bytearray `out`, or raise WriteError. Records are written inline where they occur,
    except a record met again inside itself (recursion), one already inlined twice, or
    one nested past what one Python function can hold: those call a function made for
    the record.
    """

    def __init__(self) -> None:
        self.constants: dict[str, Any] = {
            "WriteError": WriteError,
            "_MISSING": _MISSING,
            "_long_bytes": _long_bytes,
            "_timestamp_millis": _timestamp_millis,
            "_pack_double": _pack_double,
            "_decline": _decline,
            "_LC": _VARINT_CACHE,
        }
        self._named: dict[str, tuple[str, Any, str]] = {}  # full name -> kind, schema, space
        self._functions: dict[str, str] = {}  # record full name -> function name
        self._expanding: list[str] = []
        self._inlined: Counter[str] = Counter()
        self._counter = 0
        self._loops = 0

    def _fresh(self, stem: str) -> str:
        self._counter += 1
        return f"{stem}{self._counter}"

    def _constant(self, value: Any, stem: str = "K") -> str:
        name = self._fresh(stem)
        self.constants[name] = value
        return name

    # --- the whole program -----------------------------------------------------

    def program(self, schema: Any) -> str:
        self._declare(schema, "")
        lines = ["def write(datum):", "    out = bytearray()"]
        self._emit(schema, "", "datum", lines, 1)
        lines.append("    return bytes(out)")
        source = "\n".join(lines)
        # a function for each record that is called rather than inlined; written
        # after, since writing one may call for another
        done: set[str] = set()
        while todo := [n for n in self._functions if n not in done]:
            for full in todo:
                done.add(full)
                _, definition, space = self._named[full]
                body = [f"def {self._functions[full]}(out, v):"]
                self._expanding.append(full)
                self._emit_record(definition, _full_name(definition, space)[1], "v", body, 1)
                self._expanding.pop()
                source += "\n\n" + "\n".join(body)
        return source + "\n"

    def _declare(self, schema: Any, namespace: str) -> None:
        """Learn every named type first: a reference may come before its definition
        only through recursion, but the kinds of union branches are needed early."""
        if isinstance(schema, list):
            for branch in schema:
                self._declare(branch, namespace)
            return
        if not isinstance(schema, dict):
            return
        kind = schema.get("type")
        if kind in ("record", "enum"):
            full, space = _full_name(schema, namespace)
            self._named.setdefault(full, (str(kind), schema, space))
            if kind == "record":
                for field in schema["fields"]:
                    self._declare(field["type"], space)
        elif kind == "array":
            self._declare(schema["items"], namespace)
        elif isinstance(kind, (dict, list)):
            self._declare(kind, namespace)

    def _resolve(self, schema: Any, namespace: str) -> tuple[str, Any, str]:
        """(kind, definition, namespace) of a schema node; UnsupportedSchemaError if
        it is outside the scope."""
        if isinstance(schema, list):
            return "union", schema, namespace
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return schema, schema, namespace
            full = schema if "." in schema else f"{namespace}.{schema}".lstrip(".")
            if full not in self._named:
                raise UnsupportedSchemaError(f"unknown named type {schema!r}")
            kind, definition, space = self._named[full]
            return kind, definition, space
        kind, logical = schema.get("type"), schema.get("logicalType")
        if kind == "long" and logical == "timestamp-millis":
            return "timestamp-millis", schema, namespace
        if logical is not None:
            raise UnsupportedSchemaError(f"logical type {logical!r}")
        if isinstance(kind, (dict, list)):
            return self._resolve(kind, namespace)
        if isinstance(kind, str) and kind in _PRIMITIVES:
            return kind, kind, namespace
        if kind in ("record", "enum"):
            full, _ = _full_name(schema, namespace)
            return str(kind), self._named[full][1], namespace
        if kind == "array":
            return "array", schema, namespace
        raise UnsupportedSchemaError(f"type {kind!r}")

    # --- one node --------------------------------------------------------------

    def _emit(self, schema: Any, namespace: str, var: str, lines: list[str], depth: int) -> None:
        kind, definition, space = self._resolve(schema, namespace)
        pad = "    " * depth
        if kind == "null":
            lines.append(f"{pad}if {var} is not None: _decline('null', {var})")
        elif kind == "boolean":
            lines += [
                f"{pad}if {var} is True: out.append(1)",
                f"{pad}elif {var} is False: out.append(0)",
                f"{pad}else: _decline('a boolean', {var})",
            ]
        elif kind == "long":
            lines.append(f"{pad}if type({var}) is not int: _decline('a long', {var})")
            self._emit_int(var, lines, depth)
        elif kind == "timestamp-millis":
            lines.append(f"{pad}{var} = _timestamp_millis({var})")
            self._emit_int(var, lines, depth)
        elif kind == "double":
            lines += [
                f"{pad}if type({var}) is float or type({var}) is int:",
                f"{pad}    out += _pack_double({var})",
                f"{pad}else: _decline('a double', {var})",
            ]
        elif kind == "string":
            data = self._fresh("b")
            lines += [
                f"{pad}if type({var}) is not str: _decline('a string', {var})",
                f"{pad}{data} = {var}.encode()",
            ]
            self._emit_length(data, lines, depth)
            lines.append(f"{pad}out += {data}")
        elif kind == "enum":
            self._emit_enum(definition, space, var, lines, depth)
        elif kind == "array":
            self._emit_array(definition, space, var, lines, depth)
        elif kind == "record":
            full = _full_name(definition, space)[0]
            deep = self._loops >= _MAX_INLINE_LOOPS or depth >= _MAX_INLINE_DEPTH
            # inlined twice at most (custom_fields and fields): a record used at every
            # level of a deeper one would otherwise double the source per level
            if full in self._expanding or deep or self._inlined[full] >= _MAX_INLINES:
                function = self._functions.setdefault(full, self._fresh("write_record_"))
                lines.append(f"{pad}{function}(out, {var})")
            else:
                self._inlined[full] += 1
                self._expanding.append(full)
                self._emit_record(definition, _full_name(definition, space)[1], var, lines, depth)
                self._expanding.pop()
        elif kind == "union":
            self._emit_union(definition, space, var, lines, depth)
        else:  # pragma: no cover - _resolve returns only the kinds above
            raise UnsupportedSchemaError(f"type {kind!r}")

    def _emit_int(self, var: str, lines: list[str], depth: int) -> None:
        pad = "    " * depth
        # one byte for -64..63 (zigzag), remembered bytes for the repeated ids
        lines += [
            f"{pad}if -64 <= {var} < 64: out.append(({var} << 1) ^ ({var} >> 63))",
            f"{pad}else: out += _LC.get({var}) or _long_bytes({var})",
        ]

    def _emit_length(self, var: str, lines: list[str], depth: int) -> None:
        pad = "    " * depth
        size = self._fresh("n")
        lines += [
            f"{pad}{size} = len({var})",
            f"{pad}if {size} < 64: out.append({size} << 1)",
            f"{pad}else: out += _long_bytes({size})",
        ]

    def _emit_enum(
        self, schema: Mapping[str, Any], namespace: str, var: str, lines: list[str], depth: int
    ) -> None:
        symbols = list(schema["symbols"])
        if len(symbols) > 64:
            raise UnsupportedSchemaError("an enum of more than 64 symbols")
        if len(set(symbols)) != len(symbols):
            raise UnsupportedSchemaError("an enum with a repeated symbol")
        index = self._constant({s: bytes([i << 1]) for i, s in enumerate(symbols)}, "ENUM")
        pad = "    " * depth
        found = self._fresh("e")
        lines += [
            f"{pad}{found} = {index}.get({var}) if type({var}) is str else None",
            f"{pad}if {found} is None: _decline('a symbol of the enum', {var})",
            f"{pad}out += {found}",
        ]

    def _emit_array(
        self, schema: Mapping[str, Any], namespace: str, var: str, lines: list[str], depth: int
    ) -> None:
        pad = "    " * depth
        item = self._fresh("i")
        lines += [
            f"{pad}if type({var}) is not list: _decline('an array', {var})",
            f"{pad}if {var}:",  # one block of len(value) items, then the empty block
        ]
        self._emit_length(var, lines, depth + 1)
        lines.append(f"{pad}    for {item} in {var}:")
        self._loops += 1
        self._emit(schema["items"], namespace, item, lines, depth + 2)
        self._loops -= 1
        lines.append(f"{pad}out.append(0)")

    def _emit_record(
        self, schema: Mapping[str, Any], namespace: str, var: str, lines: list[str], depth: int
    ) -> None:
        pad = "    " * depth
        lines.append(f"{pad}if type({var}) is not dict: _decline('a record', {var})")
        get = self._fresh("get")
        lines.append(f"{pad}{get} = {var}.get")
        for field in schema["fields"]:
            value = self._fresh("f")
            default = self._constant(field["default"]) if "default" in field else "_MISSING"
            # no encoder takes _MISSING: a required field that is absent is declined
            lines.append(f"{pad}{value} = {get}({field['name']!r}, {default})")
            self._emit(field["type"], namespace, value, lines, depth)

    def _emit_union(self, branches: list[Any], namespace: str, var: str, lines: list[str],
                    depth: int) -> None:  # fmt: skip
        if len(branches) > 64:
            raise UnsupportedSchemaError("a union of more than 64 branches")
        named: dict[str, tuple[int, Any, str]] = {}  # fastavro's branch name -> index, ...
        for index, branch in enumerate(branches):
            name, kind = self._branch(branch, namespace)
            if name in named:  # the spec forbids it; fastavro takes it, so leave it to it
                raise UnsupportedSchemaError(f"a union with two {name!r} branches")
            named[name] = (index, branch, kind)
        # An untagged value goes where its Python type says, as fastavro would put it:
        # fastavro takes the first branch that validates it, so a type is routed only
        # when the first branch that might take it is the only branch of its own kind
        # (an int with "double" before "long", a str with an enum before "string", a
        # dict for one of two records: fastavro picks).
        by_type: dict[type, str] = {}
        for python_type, accepting in _MIGHT_TAKE.items():
            first = next((n for n, (_, _, k) in named.items() if k in accepting), None)
            if first is None or _PYTHON_TYPE.get(named[first][2]) is not python_type:
                continue
            same_kind = [n for n, (_, _, k) in named.items() if k == named[first][2]]
            if len(same_kind) == 1:
                by_type[python_type] = first
        others = [name for name in named if name != "null"]
        # the common ["null", T]: whatever is not null goes to T, whose code checks it
        only = others[0] if len(named) == 2 and len(others) == 1 else None

        # Each branch's code is written once (twice, per nesting level, would grow the
        # source exponentially with depth).
        pad = "    " * depth
        if only is not None:
            index, branch, _ = named[only]
            null = named["null"][0] << 1
            lines += [
                f"{pad}if {var} is None: out.append({null})",
                f"{pad}else:",
                f"{pad}    if type({var}) is tuple:",  # tagged: only T's tag (fastavro: any)
                f"{pad}        if len({var}) != 2 or {var}[0] != {only!r}:",
                f"{pad}            _decline({'the union branch ' + only!r}, {var})",
                f"{pad}        {var} = {var}[1]",
            ]
            if named[only][2] == "record":  # fastavro reads "-type" as a branch name
                lines.append(f"{pad}    elif '-type' in {var}: _decline('-type', {var})")
            lines.append(f"{pad}    out.append({index << 1})")
            self._emit(branch, namespace, var, lines, depth + 1)
            return
        # Dispatch on one key: an untagged value's Python type, or for a tagged one the
        # key of the branch its tag names (that branch's type if untagged values of that
        # type go there too, else an object of its own).
        keys: dict[str, Any] = {}
        for name, (_, _, kind) in named.items():
            branch_type = type(None) if kind == "null" else _PYTHON_TYPE.get(kind)
            unique = branch_type is not None and by_type.get(branch_type) == name
            keys[name] = branch_type if unique or kind == "null" else object()
        tag_keys = self._constant(keys, "TAGS")
        key, tag = self._fresh("k"), self._fresh("tag")
        lines += [
            f"{pad}if ({key} := type({var})) is tuple:",
            f"{pad}    if len({var}) != 2: _decline('a branch of the union', {var})",
            f"{pad}    {tag}, {var} = {var}",
            f"{pad}    {key} = {tag_keys}.get({tag})",
        ]
        if dict in by_type:  # fastavro reads "-type" as a branch name
            lines.append(f"{pad}elif {key} is dict and '-type' in {var}: _decline('-type', {var})")
        keyword = "if"
        for name, (index, branch, _) in named.items():
            lines.append(f"{pad}{keyword} {key} is {self._constant(keys[name], 'KEY')}:")
            lines.append(f"{pad}    out.append({index << 1})")
            self._emit(branch, namespace, var, lines, depth + 1)
            keyword = "elif"
        lines.append(f"{pad}else: _decline('one branch of the union', {var})")

    def _branch(self, schema: Any, namespace: str) -> tuple[str, str]:
        """A branch's name in fastavro's tuple notation, and its kind."""
        kind, definition, space = self._resolve(schema, namespace)
        if kind in ("record", "enum"):
            return _full_name(definition, space)[0], kind
        if kind == "timestamp-millis":
            return "long", kind
        return kind, kind


def generated_source(schema: Any) -> str:
    """The Python source `compile_writer` runs for `schema` (to read, and for tests)."""
    return _Generator().program(schema)


def compile_writer(schema: Any) -> Callable[[Any], bytes]:
    """datum -> Avro binary body for `schema` (its JSON form); WriteError if declined."""
    generator = _Generator()
    try:
        source = generator.program(schema)
        if len(source) > _MAX_SOURCE_CHARS:
            raise UnsupportedSchemaError(f"a schema whose writer is {len(source):,} characters")
        code = compile(source, "<avro writer>", "exec")
    except (SyntaxError, RecursionError) as exc:  # nested past what Python compiles
        raise UnsupportedSchemaError(f"a schema nested too deep: {exc}") from exc
    namespace = dict(generator.constants)
    exec(code, namespace)  # noqa: S102 - our own source, built from names and constants
    generated: Callable[[Any], bytes] = namespace["write"]

    def write(datum: Any) -> bytes:
        try:
            return generated(datum)
        except (UnicodeEncodeError, OverflowError, struct.error, TypeError, RecursionError) as exc:
            # a lone surrogate in a string, an int too large for a double, an unhashable
            # union tag, a recursive datum deeper than Python's stack
            raise WriteError(f"{type(exc).__name__}: {exc}") from exc

    return write


def schema_writer(
    schema: Any, parsed: Any, compiled: Callable[[Any], bytes] | None = None
) -> Callable[[Any], bytes]:
    """The compiled writer, falling back to fastavro (`parsed`: fastavro's parsed form)
    for a datum it declines or a schema it cannot compile. `compiled`: the writer
    `compile_writer(schema)` made already, if any."""

    def with_fastavro(datum: Any) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, datum)
        return out.getvalue()

    if compiled is None:
        try:
            compiled = compile_writer(schema)
        except UnsupportedSchemaError:
            return with_fastavro

    def write(datum: Any) -> bytes:
        try:
            return compiled(datum)
        except WriteError:
            return with_fastavro(datum)

    return write

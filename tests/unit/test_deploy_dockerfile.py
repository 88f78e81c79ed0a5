"""Static checks of the Dockerfile (Docker cannot run here): stages, user, runtime deps."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass

import pytest

from tests.unit.deploy_support import ROOT, env_names_in, unknown_settings


@dataclass(frozen=True, slots=True)
class Instruction:
    op: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions with line continuations joined and comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line = pending + line
        pending = ""
        op, _, args = line.partition(" ")
        out.append(Instruction(op.upper(), args.strip()))
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for ins in instructions:
        if ins.op == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse((ROOT / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def runtime(dockerfile: list[Instruction]) -> list[Instruction]:
    return stages(dockerfile)[-1]


def _args(stage: list[Instruction], op: str) -> list[str]:
    return [i.args for i in stage if i.op == op]


def test_parser_joins_continuations_and_splits_stages() -> None:
    parsed = parse("FROM a AS b\n# c\nRUN x \\\n  && y\nFROM d\nUSER 1\n")
    assert [i.op for i in parsed] == ["FROM", "RUN", "FROM", "USER"]
    assert parsed[1].args == "x && y"
    assert [len(s) for s in stages(parsed)] == [2, 2]


def test_multi_stage_build_on_slim_python_311(dockerfile: list[Instruction]) -> None:
    froms = [i.args for i in dockerfile if i.op == "FROM"]
    assert len(froms) >= 2
    base = next(i.args for i in dockerfile if i.op == "ARG" and i.args.startswith("PYTHON_IMAGE="))
    assert base == "PYTHON_IMAGE=python:3.11-slim"
    assert froms[-1].startswith("${PYTHON_IMAGE}")


def test_runtime_copies_only_the_built_venv(runtime: list[Instruction]) -> None:
    copies = _args(runtime, "COPY")
    assert copies, "the runtime stage copies nothing"
    assert all(c.startswith("--from=builder ") for c in copies), copies


def test_runtime_runs_as_numeric_non_root_user(runtime: list[Instruction]) -> None:
    users = _args(runtime, "USER")
    assert users, "the runtime stage has no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit()
    assert int(uid) > 0
    assert not gid or int(gid) > 0
    # USER must come after every RUN, or those would run as root in the final image
    ops = [i.op for i in runtime]
    assert ops.index("USER") > max(i for i, op in enumerate(ops) if op == "RUN")


def test_no_test_extra_and_no_editable_install(dockerfile: list[Instruction]) -> None:
    for run in _args(dockerfile, "RUN"):
        assert not re.search(r"\[[^\]]*\btest\b", run), run
        assert "[embedded]" not in run
        assert not re.search(r"\s(-e|--editable)\s", f" {run} "), run


def test_read_only_root_filesystem_friendly(runtime: list[Instruction]) -> None:
    env = " ".join(_args(runtime, "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    state = re.search(r"ZENDESK_CDC_STATE_DIR=(\S+)", env)
    assert state is not None
    volumes = [v for arg in _args(runtime, "VOLUME") for v in json.loads(arg)]
    assert state.group(1) in volumes


def test_dockerfile_settings_exist() -> None:
    names = env_names_in((ROOT / "Dockerfile").read_text())
    assert names
    assert unknown_settings(names) == set()


def test_entrypoint_port_and_command(runtime: list[Instruction]) -> None:
    assert json.loads(_args(runtime, "ENTRYPOINT")[-1]) == ["zendesk-cdc"]
    assert json.loads(_args(runtime, "CMD")[-1]) == ["run"]
    assert _args(runtime, "EXPOSE")[-1].split() == ["9108"]


def test_entry_point_exists_in_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "zendesk-cdc" in project["scripts"]


def test_build_context_holds_what_pip_install_needs(dockerfile: list[Instruction]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    mapped_dirs = set(pyproject["tool"]["setuptools"].get("package-dir", {}).values())
    builder = stages(dockerfile)[0]
    copied = {
        src.rstrip("/")
        for arg in _args(builder, "COPY")
        for src in shlex.split(arg)[:-1]
        if not src.startswith("--")
    }
    # setuptools reads the readme named in pyproject; the package dir holds the code
    assert {"pyproject.toml", project["readme"], "producer"} <= copied
    # directories mapped into the package (the Avro schemas) must be there too
    assert mapped_dirs <= copied
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for src in copied:
        assert f"!{src}" in ignore or f"!{src}/" in ignore, f".dockerignore drops {src}"
    assert "*" in ignore, ".dockerignore must start from an empty context (no .venv, .git)"

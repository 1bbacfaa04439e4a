"""The deployment spec: the one file a user writes to describe a cluster.

This package is the only reader of spec YAML. `load_spec` turns a file into a `Cluster` (every
node with its defaults resolved) or raises one `SpecError` listing every problem found, each with
its YAML path and line. Checks happen in three passes, so a user sees all problems at once:
the YAML itself (syntax, duplicate keys), the shape and field values (pydantic), and the rules
that span fields (indices, threshold, distinct accounts and names).

The passes live in their own modules: `reader` (YAML to data, with lines and without duplicate
keys), `models` (field types and the pydantic models), `messages` (pydantic's errors as
problems) and `resolve` (the cross-field rules, and the `Cluster` and `Node` they produce).
Import from the package itself; the modules are its parts, not its interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tsm_infra.errors import SpecError
from tsm_infra.limits import partition_of
from tsm_infra.spec.messages import pydantic_problems, type_name
from tsm_infra.spec.models import (
    DEFAULT_DB_INSTANCE_CLASS,
    DEFAULT_INSTANCE_TYPE,
    Access,
    NodeSettings,
    NodeSpec,
    Spec,
    TsmSettings,
    known_regions,
)
from tsm_infra.spec.reader import MAX_YAML_DEPTH, MAX_YAML_NODES, YamlPath, format_path, read_yaml
from tsm_infra.spec.resolve import Cluster, Node, resolve_cluster
from tsm_infra.specfile import decode, read_spec_bytes
from tsm_infra.specfile import fail as _fail


def load_spec_text(text: str, source: str = "<spec>") -> Cluster:
    """Validate spec text; `source` names it in messages. Raises SpecError listing every problem."""
    data, lines = read_yaml(text, source)
    if not isinstance(data, dict):
        message = f"the spec must be a mapping of keys to values, got {type_name(data)}"
        raise _fail(source, message, 1)
    # `x-` keys hold YAML anchors for the rest of the file (x-common: &common {...})
    data = {key: value for key, value in data.items() if not key.startswith("x-")}
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, pydantic_problems(exc, lines)) from None
    return resolve_cluster(spec, lines, source)


def load_spec(path: str | Path) -> Cluster:
    """Read and validate the spec file at `path` (`-`: standard input, named `<stdin>`)."""
    raw, source = read_spec_bytes(path)
    return load_spec_text(decode(raw, source), source)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the spec, for editors and CI."""
    schema = Spec.model_json_schema()
    # top-level `x-` keys are ignored (YAML anchors), as load_spec_text does
    schema["patternProperties"] = {"^x-": {}}
    return schema


__all__ = [
    "DEFAULT_DB_INSTANCE_CLASS",
    "DEFAULT_INSTANCE_TYPE",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "Access",
    "Cluster",
    "Node",
    "NodeSettings",
    "NodeSpec",
    "Spec",
    "TsmSettings",
    "YamlPath",
    "format_path",
    "json_schema",
    "known_regions",
    "load_spec",
    "load_spec_text",
    "partition_of",
]

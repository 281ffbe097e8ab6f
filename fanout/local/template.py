"""Read a synthesized CloudFormation template back: resources, and intrinsics resolved.

The local mode runs the state machine definition that ``cdk deploy`` would deploy. In the
template that definition is a ``DefinitionString`` built with ``Fn::Join`` around ``Ref`` /
``Fn::GetAtt`` tokens (function ARNs, table names...). :func:`resolve` turns such a value
into plain data, given what each logical id stands for in the target environment::

    template = load_template("cdk.out", "Fanout")
    expand = logical_id(template, "Fanout/Functions/Expand/Resource")
    definition = state_machine_definition(template, {f"{expand}.Arn": expand_arn, ...})

A value for a ``Fn::GetAtt`` is looked up as ``"<LogicalId>.<Attribute>"`` first, then as
``"<LogicalId>"``; a ``Ref`` as ``"<LogicalId>"``. ``AWS::Region``, ``AWS::AccountId``,
``AWS::Partition`` and ``AWS::URLSuffix`` have defaults that ``refs`` may override.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PSEUDO_PARAMETERS: dict[str, str] = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "Fanout",
    "AWS::NoValue": "",
}


class UnresolvedToken(KeyError):
    """A ``Ref`` / ``Fn::GetAtt`` whose logical id has no value in ``refs``."""


def load_template(out_dir: str | Path = "cdk.out", stack_name: str = "Fanout") -> dict[str, Any]:
    """The template ``cdk synth`` wrote for ``stack_name`` into ``out_dir``."""
    path = Path(out_dir) / f"{stack_name}.template.json"
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def resources(template: Mapping[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for every resource of one type (e.g. ``AWS::Lambda::Function``)."""
    return {
        lid: res
        for lid, res in template.get("Resources", {}).items()
        if res.get("Type") == type_name
    }


def logical_id(template: Mapping[str, Any], construct_path: str) -> str:
    """The logical id of the resource at a construct path (``aws:cdk:path`` metadata).

    ``construct_path`` may leave out the stack name: ``Functions/Expand/Resource``.
    """
    found: list[str] = [
        str(lid)
        for lid, res in template.get("Resources", {}).items()
        if _path_matches(res.get("Metadata", {}).get("aws:cdk:path", ""), construct_path)
    ]
    if len(found) != 1:
        raise KeyError(f"{len(found)} resources at construct path {construct_path!r}")
    return found[0]


def _path_matches(path: str, wanted: str) -> bool:
    return path == wanted or path.endswith("/" + wanted.lstrip("/"))


def resolve(value: Any, refs: Mapping[str, Any]) -> Any:
    """``value`` with its intrinsics resolved: ``Ref``, ``Fn::GetAtt``, ``Fn::Join``,
    ``Fn::Select``, ``Fn::Split``, ``Fn::Sub`` and ``Fn::GetAZs`` (three zones)."""
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return _lookup(refs, str(arg), None)
        if key == "Fn::GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return _lookup(refs, str(parts[0]), str(parts[1]))
        if key == "Fn::Join":
            separator, items = arg
            return str(separator).join(str(resolve(i, refs)) for i in resolve(items, refs))
        if key == "Fn::Select":
            index, items = arg
            return resolve(items, refs)[int(resolve(index, refs))]
        if key == "Fn::Split":
            separator, text = arg
            return str(resolve(text, refs)).split(separator)
        if key == "Fn::GetAZs":
            region = refs.get("AWS::Region", PSEUDO_PARAMETERS["AWS::Region"])
            return [f"{region}{zone}" for zone in "abc"]
        if key == "Fn::Sub":
            text, names = (arg, {}) if isinstance(arg, str) else arg
            return _sub(str(text), {k: resolve(v, refs) for k, v in names.items()}, refs)
    return {k: resolve(v, refs) for k, v in value.items()}


def _sub(text: str, names: Mapping[str, Any], refs: Mapping[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match[1]
        if name in names:
            return str(names[name])
        if "." in name:
            lid, attribute = name.split(".", 1)
            return str(_lookup(refs, lid, attribute))
        return str(_lookup(refs, name, None))

    return re.sub(r"\$\{([^}!]+)\}", one, text)


def _lookup(refs: Mapping[str, Any], lid: str, attribute: str | None) -> Any:
    if attribute is not None and f"{lid}.{attribute}" in refs:
        return refs[f"{lid}.{attribute}"]
    if lid in refs:
        return refs[lid]
    if lid in PSEUDO_PARAMETERS:
        return PSEUDO_PARAMETERS[lid]
    token = f"{lid}.{attribute}" if attribute else lid
    raise UnresolvedToken(f"no value given for {token}")


def placeholders(template: Mapping[str, Any]) -> dict[str, str]:
    """A value for every logical id: ``"<LogicalId>"`` (for tests and inspection)."""
    return {lid: f"<{lid}>" for lid in template.get("Resources", {})}


#: The run state machine is the one under this construct (infra.workflow.Workflow); the
#: pipeline state machine is under ``Pipelines`` (infra.pipelines).
RUN_MACHINE_CONSTRUCT = "Workflow"


def run_state_machine(template: Mapping[str, Any]) -> str:
    """The logical id of the run state machine: the template's only one, or the one the
    ``Workflow`` construct made."""
    machines = resources(template, "AWS::StepFunctions::StateMachine")
    if len(machines) == 1:
        return next(iter(machines))
    runs = [lid for lid in machines if lid.startswith(RUN_MACHINE_CONSTRUCT)]
    if len(runs) != 1:
        raise KeyError(f"{len(machines)} state machines in the template, {len(runs)} of them "
                       f"the run's ({RUN_MACHINE_CONSTRUCT}): name one")
    return runs[0]


def state_machine_definition(
    template: Mapping[str, Any],
    refs: Mapping[str, Any] | None = None,
    state_machine: str | None = None,
) -> dict[str, Any]:
    """The ASL definition of a state machine of the template, as a dict.

    ``state_machine`` is its logical id; by default the run state machine's.
    With ``refs`` left out, every token becomes the placeholder ``"<LogicalId>"``.
    """
    machines = resources(template, "AWS::StepFunctions::StateMachine")
    if state_machine is None:
        state_machine = run_state_machine(template)
    definition = machines[state_machine]["Properties"]["DefinitionString"]
    text = resolve(definition, placeholders(template) if refs is None else refs)
    parsed: dict[str, Any] = json.loads(text)
    return parsed

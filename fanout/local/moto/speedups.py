"""Cheaper paths through moto for the calls a run makes thousands of times, same answers.

A local run spends its time in moto's generic machinery, not in the emulated services:
its response serializer looks every field of every DynamoDB answer up through six alias
rules; its Step Functions interpreter builds a JSONPath parser (a yacc table) for every
path it evaluates. What is changed here computes the same thing once and reuses it:

DynamoDB's (in :mod:`fanout.local.moto.dynamodb`):

- :func:`fast_dynamodb_serializer`: a DynamoDB answer (plain dicts by then) is serialized
  by the same walk over the operation's output shape as moto's JSON serializer, with the
  keys each field may be found under worked out by moto's own picker once per field
  rather than once per value. Anything the walk does not cover (blobs, timestamps,
  response transformers, errors) goes through moto's serializer as before.
- :func:`plain_strings_and_sizes`: a string value's hash, equality and order, and an
  item's size, without ``DynamoType``'s generic casts and copies.
- :mod:`fanout.local.moto.answers`: for a direct client's call, that walk and botocore's
  parse of its JSON composed into one walk that hands the client its answer parsed (no
  JSON written and read back); what it does not cover takes the wire path.

(:func:`fanout.local.moto.dynamodb.cheap_transactions` is not one of them: without it a
run's time grows with the square of its items and 300 items take 4 GB, so it is always
applied, with the patches the local mode needs: :func:`fanout.local.aws.take_over`,
docs/decisions/0007.)

And the rest of moto's (the expression ones in :mod:`fanout.local.moto.expressions`
and :mod:`fanout.local.moto.conditions`):

- :func:`cached_json_paths`: one parsed JSONPath per path string (parsed paths are not
  changed by evaluating them).
- :func:`cached_update_expressions`: an update expression is parsed once, copied by
  unpickling, and its read-only form checks run once per tree and attribute names.
- :func:`cached_traversal_maps`: the processor each node of an expression gets is worked
  out once per (processor class, node class), not by ``isinstance`` at every node.
- :func:`cached_attribute_keys`: where moto's answer serializer looks for a field,
  once per kind of value, field and key.
- :func:`cached_method_names`: the list of a response class's actions, once per class;
  an action's method name, once per action.
- :func:`json_copies_in_step_functions`: the interpreter's copies of its JSON values
  without ``deepcopy``'s memo.
- :func:`cached_condition_lexing`: a condition expression's tokens, once per expression.
- :func:`cached_condition_parses`: a condition's parse, once per expression, names and
  the values it names.
- :func:`conditions_judged_once`: a transaction's writes judged once, by the transaction.
- :func:`cheap_request_ids`: each answer's request id drawn at once, not letter by letter.
- :func:`indexed_queries`: a query on an index looks only at the items with its key value.
- :func:`uncopied_query_results`: a query's results answered without a deep copy first.
- :func:`uncopied_updates`: an update copies its item only for the return values that read it.
- :func:`fanout.local.moto.updates.planned_updates`: an update of the shapes a run makes
  applied from a plan read once per expression, once moto's walks have applied it.
- :func:`fanout.local.direct.direct_clients` (applied by the local runner): the handlers'
  calls handed to moto's service code without the HTTP round trip.

:func:`apply` applies them all unless ``FANOUT_LOCAL_SPEEDUPS=0``, and only on a moto
release they were checked against (:data:`CHECKED_MOTO`): :func:`enabled` says which.

Each returns the function that puts moto's own back. ``tests/e2e/test_speedups.py``
checks each against moto's own answers.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

from fanout.local.moto.conditions import (
    cached_condition_lexing,
    cached_condition_parses,
    conditions_judged_once,
)
from fanout.local.moto.dynamodb import fast_dynamodb_serializer, plain_strings_and_sizes
from fanout.local.moto.expressions import cached_traversal_maps, cached_update_expressions
from fanout.local.moto.params import Unsupported as ParamsUnsupported
from fanout.local.moto.params import json_round_trip
from fanout.local.moto.updates import planned_updates

Restore = Callable[[], None]


def cached_json_paths() -> Restore:
    """Parse each JSONPath the interpreter evaluates once."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    saved = [(module, getattr(module, "parse")) for module in (json_path, result_path)]  # noqa: B009
    for module, parse in saved:
        setattr(module, "parse", functools.lru_cache(maxsize=4096)(parse))  # noqa: B010

    def restore() -> None:
        for module, parse in saved:
            setattr(module, "parse", parse)  # noqa: B010

    return restore


#: The Step Functions interpreter's modules whose copies are of JSON values.
_INTERPRETER_COPIES = (
    "moto.stepfunctions.parser.asl.component.common.string.string_expression",
    "moto.stepfunctions.parser.asl.component.common.path.result_path",
    "moto.stepfunctions.parser.asl.component.state.exec.execute_state",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
    "moto.stepfunctions.parser.asl.eval.states",
    "moto.stepfunctions.parser.asl.eval.environment",
)


def json_copy(value: Any, memo: Any = None) -> Any:
    """``copy.deepcopy`` of a JSON value (dicts, lists, strings, numbers, booleans, None)
    without its memo (:func:`fanout.local.moto.params.json_round_trip`); anything else is
    deep-copied by ``copy.deepcopy``.

    The one difference: a dict or list held twice in ``value`` is copied twice (deepcopy
    copies it once and holds the copy twice); a JSON document holds nothing twice.
    """
    try:
        return json_round_trip(value)
    except ParamsUnsupported:  # not JSON through and through
        return copy.deepcopy(value, memo)


def json_copies_in_step_functions() -> Restore:
    """The interpreter's copies of states' inputs, outputs and stacks as JSON copies.

    moto's Step Functions interpreter deep-copies a state's input, its result, its stack
    and the parameters it evaluates, several times per state: JSON values, which
    ``copy.deepcopy`` walks with a memo of every object (to keep what is held twice held
    twice, and cycles, neither of which JSON has). :func:`json_copy` copies them without
    it; what is not JSON (the interpreter's own objects) is deep-copied as before.
    """
    import importlib
    import types

    modules = [importlib.import_module(name) for name in _INTERPRETER_COPIES]
    saved = [(module, getattr(module, "copy")) for module in modules]  # noqa: B009
    copier = types.SimpleNamespace(deepcopy=json_copy, copy=copy.copy)
    for module in modules:
        setattr(module, "copy", copier)  # noqa: B010

    def restore() -> None:
        for module, original in saved:
            setattr(module, "copy", original)  # noqa: B010

    return restore


def cached_attribute_keys() -> Restore:
    """Where moto's answer serializer looks for a field, worked out once per kind of value.

    For each field of each answer (every field of an ECS task, every task), moto's picker
    asks six alias rules where the value may hold the field, each made anew for the
    question. Their answer depends on the value's class (its name, a ``Meta`` it holds),
    the field's shape and its parent's, and the key: it is kept per those, for the rules
    moto uses by default; a value with a ``Meta`` of its own, or a picker with other rules,
    is asked as before.
    """
    from moto.core import serialize

    Picker = getattr(serialize, "XFormedAttributePicker")  # noqa: B009
    original = Picker.__dict__["get_possible_keys"]
    defaults = getattr(serialize, "DEFAULT_ALIAS_PROVIDERS")  # noqa: B009
    #: (value class, shape id, parent shape id, key) -> (shape, parent, the keys)
    kept: dict[tuple[type, int, int, str], tuple[Any, Any, list[str]]] = {}

    def get_possible_keys(self: Any, context: Any) -> Any:
        obj, shape = context.obj, context.shape
        if self.alias_providers is not defaults or "Meta" in getattr(obj, "__dict__", ()):
            return original(self, context)
        parent = getattr(shape, "parent", None)
        key = (type(obj), id(shape), id(parent), context.key)
        found = kept.get(key)
        if found is None or found[0] is not shape or found[1] is not parent:
            found = (shape, parent, list(original(self, context)))
            if len(kept) > 65536:
                kept.clear()
            kept[key] = found  # the shapes kept: their ids stay their own
        return iter(found[2])

    Picker.get_possible_keys = get_possible_keys

    def restore() -> None:
        Picker.get_possible_keys = original

    return restore


def cached_method_names() -> Restore:
    """Work out once per response class which actions it has, and once per action the
    name of its method.

    moto lists a class's functions (``inspect.getmembers``) on every call to find the
    action's method. The local mode replaces some methods but never adds or removes one,
    so the list is the same on every call. The method's name is the action's, from
    ``CamelCase`` to ``snake_case`` letter by letter: a function of the action's name alone.
    """
    from moto.core import responses

    saved = {name: getattr(responses, name)
             for name in ("method_names_from_class", "camelcase_to_underscores")}
    setattr(responses, "method_names_from_class",  # noqa: B010
            functools.cache(saved["method_names_from_class"]))
    setattr(responses, "camelcase_to_underscores",  # noqa: B010
            functools.lru_cache(maxsize=1024)(saved["camelcase_to_underscores"]))

    def restore() -> None:
        for name, original in saved.items():
            setattr(responses, name, original)

    return restore


def cheap_request_ids() -> Restore:
    """A request id per answer from 52 random bytes, not 52 calls of ``random.choice``.

    moto gives every answer an ``x-amzn-requestid`` of 52 letters and digits, picked one
    at a time; the same shape (52 characters of ``[A-Za-z0-9]``) comes from one draw, each
    byte mapped to a letter or digit by one ``bytes.translate``.
    """
    import secrets
    import string

    from moto.core import responses

    original = getattr(responses, "gen_amzn_requestid_long")  # noqa: B009
    alphabet = (string.ascii_letters + string.digits).encode()
    letters = bytes(alphabet[b % len(alphabet)] for b in range(256))

    def gen_amzn_requestid_long(headerdict: dict[str, Any] | None = None) -> str:
        req_id = secrets.token_bytes(52).translate(letters).decode("ascii")
        if isinstance(headerdict, dict):
            headerdict["x-amzn-requestid"] = req_id
        return req_id

    setattr(responses, "gen_amzn_requestid_long", gen_amzn_requestid_long)  # noqa: B010

    def restore() -> None:
        setattr(responses, "gen_amzn_requestid_long", original)  # noqa: B010

    return restore


def indexed_queries() -> Restore:
    """A query on an index looks only at the items holding the index's key value.

    moto answers a query on a secondary index by sorting every item of the table by its
    keys, then comparing each with the key through ``DynamoType`` (which casts both values
    at every comparison). Reconcile asks the open-attempts index every period, so a run's time grew
    with its items times its length. Here, when every key condition is on a string, the
    items whose attribute holds that very string are picked first (a dict lookup and a
    string compare each), and moto's own query (its key checks, sort, paging, filters,
    projection) runs on those: the items it would have kept are all among them.
    """
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self: Any, hash_key: Any, range_comparison: Any, range_objs: Any,
              *args: Any, **kwargs: Any) -> Any:
        # moto passes index_name positionally (8th after self), sometimes by keyword.
        index_name = args[4] if len(args) > 4 else kwargs.get("index_name")
        conditions = kwargs.get("hash_key_conditions") or []
        if (not index_name or not conditions or "all_items" in self.__dict__
                or any(value.type != "S" for _, value in conditions)):
            return original(self, hash_key, range_comparison, range_objs, *args, **kwargs)
        wanted = [(name, value.value) for name, value in conditions]
        every = (item for held in self.items.values()
                 for item in (held.values() if self.range_key_attr else (held,)))
        items = []
        for item in every:
            attrs = item.attrs
            for name, value in wanted:
                held = attrs.get(name)
                if held is None or held.type != "S" or held.value != value:
                    break
            else:
                items.append(item)
        # In the order moto's ``all_items`` gives the table (sorted by its keys).
        items.sort(key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)
        self.all_items = lambda: items
        try:
            return original(self, hash_key, range_comparison, range_objs, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]

    def restore() -> None:
        Table.query = original  # type: ignore[method-assign]

    return restore


def uncopied_query_results() -> Restore:
    """A query's results are not deep-copied before they are answered.

    moto copies every item a query returns (each attribute, each nested value), then its
    answer converts them to plain values again (``DynamoResult``), within the same
    serialized call (:func:`fanout.local.moto.correctness.serialized_dynamodb`): nothing
    can change them in between, and an index's or a projection's view is a new item
    already. Closing a run reads its partition a page at a time, and the dispatcher reads
    its queue every turn: each was paying for a copy nobody kept.
    """
    import copy
    import types

    from moto.dynamodb.models import table as table_module

    original = table_module.Table.query
    uncopied = types.SimpleNamespace(deepcopy=lambda value, memo=None: list(value))

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        table_module.copy = uncopied  # type: ignore[attr-defined,assignment]
        try:
            return original(self, *args, **kwargs)
        finally:
            table_module.copy = copy  # type: ignore[attr-defined]

    table_module.Table.query = query  # type: ignore[method-assign]

    def restore() -> None:
        table_module.Table.query = original  # type: ignore[method-assign]

    return restore


#: A stand-in for the ``copy`` module where moto's copy is kept by nobody.
_UNCOPIED = __import__("types").SimpleNamespace(deepcopy=lambda value, memo=None: value)


def uncopied_updates() -> Restore:
    """An UpdateItem copies the item only where the copy is read.

    moto deep-copies the item twice per update: once to answer ``ALL_OLD`` or
    ``UPDATED_*`` return values, once for the table's stream. An update that asks for
    neither (``NONE``, ``ALL_NEW``) of a table without a stream gets the item itself where
    the copy was taken; moto reads the copy only to build what those return values answer
    (then dropped), so every answer is the same.
    """
    import copy

    from moto.dynamodb import models as models_module
    from moto.dynamodb import responses
    from moto.dynamodb.models import DynamoDBBackend

    backend_update = DynamoDBBackend.update_item
    handler_update = responses.DynamoHandler.update_item

    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        if self.get_table(table_name).stream_shard is not None:
            return backend_update(self, table_name, *args, **kwargs)
        models_module.copy = _UNCOPIED  # type: ignore[attr-defined]
        try:
            return backend_update(self, table_name, *args, **kwargs)
        finally:
            models_module.copy = copy  # type: ignore[attr-defined]

    def handler_update_item(self: Any) -> Any:
        if self.body.get("ReturnValues", "NONE") not in ("NONE", "ALL_NEW"):
            return handler_update(self)
        responses.copy = _UNCOPIED  # type: ignore[attr-defined]
        try:
            return handler_update(self)
        finally:
            responses.copy = copy  # type: ignore[attr-defined]

    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
    responses.DynamoHandler.update_item = handler_update_item  # type: ignore[method-assign]

    def restore() -> None:
        DynamoDBBackend.update_item = backend_update  # type: ignore[method-assign]
        responses.DynamoHandler.update_item = handler_update  # type: ignore[method-assign]

    return restore


# --- the switch and the guard -------------------------------------------------------------

#: Set to ``0`` to run the local mode on moto as it comes (slower, same answers).
SWITCH = "FANOUT_LOCAL_SPEEDUPS"
#: The moto releases these were checked against (``tests/e2e/test_speedups.py``): each
#: replaces a piece of moto's internals, so another release may not have that piece.
CHECKED_MOTO = ("5.2.5",)


def enabled(environ: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """Whether the speed-ups apply, and why not when they do not."""
    from importlib.metadata import version

    source = os.environ if environ is None else environ
    if source.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False, f"{SWITCH}={source[SWITCH]}"
    installed = version("moto")
    if installed not in CHECKED_MOTO:
        return False, (f"moto {installed} is not a release they were checked against "
                       f"({', '.join(CHECKED_MOTO)})")
    return True, ""


def apply() -> list[Restore]:
    """Every speed-up, applied; the functions that undo them, in order."""
    return [fast_dynamodb_serializer(), cached_json_paths(), cached_update_expressions(),
            cached_method_names(), json_copies_in_step_functions(), cached_traversal_maps(),
            cached_condition_lexing(), cached_condition_parses(), cheap_request_ids(),
            indexed_queries(), uncopied_query_results(), uncopied_updates(),
            planned_updates(), conditions_judged_once(), plain_strings_and_sizes(),
            cached_attribute_keys()]

"""Names the user chooses that AWS constrains: a run id is a Step Functions execution name.

Step Functions accepts an execution name of 1 to 80 characters with no whitespace, no
brackets ``< > { } [ ]``, no wildcards ``? *``, none of ``" # % \\ ^ | ~ ` $ & , ; : /``
and no control characters. The local mode also makes a folder of it, so ``.`` and ``..``
are refused too (they are valid on AWS, but no id a person would choose).
"""

from __future__ import annotations

import re

from fanout.errors import Problem

MAX_EXECUTION_NAME = 80
_FORBIDDEN = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")


def run_id_problem(run_id: str, field: str = "--run-id") -> Problem | None:
    """What is wrong with ``run_id`` as a Step Functions execution name, if anything."""
    if not run_id:
        return Problem(field, "is empty; give 1 to 80 letters, digits, '-', '_' or '.'")
    if len(run_id) > MAX_EXECUTION_NAME:
        return Problem(field, f"is {len(run_id)} characters; a run id (the Step Functions "
                              f"execution name) has at most {MAX_EXECUTION_NAME}")
    bad = _FORBIDDEN.search(run_id)
    if bad:
        char = bad[0]
        shown = "a space" if char == " " else repr(char) if char.isprintable() \
            and not char.isspace() else f"U+{ord(char):04X}"
        return Problem(field, f"{run_id!r} holds {shown}, which a Step Functions execution "
                              "name cannot hold; use letters, digits, '-', '_' or '.'")
    if run_id in (".", ".."):
        return Problem(field, f"{run_id!r} is not a usable run id; use letters, digits, "
                              "'-', '_' or '.'")
    return None

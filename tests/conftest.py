"""What every folder of the suite shares: the xdist groups made to work under pytest 9.

``--dist loadgroup`` (pyproject.toml) sends the tests of one ``xdist_group`` to one worker,
so that a session's expensive fixture (the dashboard's local runs, a synthesized app) is
built by that worker alone. pytest-xdist 3.8 tells the scheduler a test's group by
appending ``@GROUP`` to its node id through ``item._nodeid``, which pytest 9 no longer
reads (a node's id is ``item._id``): every group was silently split across the workers,
each building the group's fixtures again. The hook below appends the group as xdist means
to; a later xdist that does so itself finds it done.
"""

from __future__ import annotations

import pytest


def group_of(item: pytest.Item) -> str | None:
    """The test's xdist group (several joined by ``_``, as xdist does), if it has one."""
    names = {str(m.args[0] if m.args else m.kwargs.get("name", "default"))
             for m in item.iter_markers("xdist_group")}
    return "_".join(sorted(names)) or None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # a pytest before 9: xdist's own suffix works there
        return
    for item in items:
        group = group_of(item)
        if group is None or item.nodeid.endswith(f"@{group}"):
            continue
        # NodeId.parse keeps the string it was given as the id's text.
        item._id = NodeId.parse(f"{item.nodeid}@{group}")  # type: ignore[attr-defined]

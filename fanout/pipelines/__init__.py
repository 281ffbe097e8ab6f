"""Pipelines: steps (each an ordinary run) that wait on each other (docs/pipelines.md).

Pure: the spec (:mod:`.model`), its checks (:mod:`.validate`) and the order its steps run
in (:mod:`.plan`). The local mode runs a pipeline with :mod:`fanout.local.pipeline`.
"""

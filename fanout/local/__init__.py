"""The local mode: the synthesized control plane on emulated AWS, tasks as local processes.

Nothing here is imported by the Lambda handlers; the CLI imports it lazily.
"""

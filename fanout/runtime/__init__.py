"""The control plane's logic: one module per function (what ``lambdas/`` calls)."""

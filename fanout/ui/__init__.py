"""The dashboard (``fanout ui``): a local web app over the records of runs."""

"""The dashboard's function (its own code asset: infra/dashboard_asset.py)."""

"""The CDK app of fanout: one construct per capability, composed by :mod:`infra.stack`."""

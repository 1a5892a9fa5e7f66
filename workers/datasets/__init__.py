"""Aggregate datasets over member vehicles, with a minimum cohort, released with differential
privacy within each order's epsilon budget (DESIGN.md §4, docs/gateway.md § Datasets).
`datasets.build` (Celery) computes a job queued by POST /v1/orders/{orderId}/dataset."""

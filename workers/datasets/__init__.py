"""One-off aggregate datasets over member vehicles, with a minimum cohort (DESIGN.md §4).
`datasets.build` (Celery) computes a job queued by POST /v1/orders/{orderId}/dataset."""

"""What operators see: the observability server (/healthz /readyz /metrics /status) and the
Prometheus metrics it serves."""

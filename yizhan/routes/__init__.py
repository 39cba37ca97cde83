"""HTTP routers, one per resource. Only this package and ``yizhan.api`` import FastAPI."""

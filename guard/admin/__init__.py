"""The control plane: the admin listener (server.py, http.py), its API (app.py, openapi.py)
and what it does to sandboxes and worlds (control.py)."""

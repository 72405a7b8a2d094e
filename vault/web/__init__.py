"""The web service of ``vaultctl serve`` ([web] listen): Bonnie's JSON-RPC client API (rpc.py)
for its API users (apiusers.py), and free/busy; app.py is the aiohttp application."""

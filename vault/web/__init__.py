"""The web service of ``vaultctl serve`` ([web] listen): Bonnie's JSON-RPC client API (rpc.py)
for its API users (apiusers.py), free/busy, and the pages for people behind a login by LDAP
bind (auth.py, sessions.py; pages.py, review_pages.py, render.py, svg.py); app.py is the
aiohttp application."""

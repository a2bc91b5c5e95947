"""The agent inbox: full pages, HTML fragments for partial updates, and the actions agents take.

Fragments are fetched by static/js/inbox.js; actions call the same services as the REST API, so every
rule has one code path. Every lookup goes through a selector scoped to request.organization: another
organization's conversation, message, contact or attachment is a 404.
"""

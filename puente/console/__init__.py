"""The auditors' console (``puente audit serve``): a read-only web view over the audit index.

    app       the Starlette application and its routes
    core      configuration, the answer path (index, audit, page), sign-in, security headers
    origin    whether a request's browser is at an https origin: its cookies' names, Secure, HSTS
    sameorigin only requests from the console's own origin are answered (Sec-Fetch-Site, Origin)
    pages     the pages
    rate      how many requests one account may make (429 past it), and the summary of those refused
    views     formatting helpers the templates use
    charts    server-rendered SVG bar charts
    cleartext the cookies a browser was given in clear, ended under an https origin (a device token, anywhere)
    server    running it with uvicorn beside the query log and the index refresher
"""

from puente.console.app import create_app
from puente.console.core import ConsoleConfig, IndexReader, QuerySink

__all__ = ["ConsoleConfig", "IndexReader", "QuerySink", "create_app"]

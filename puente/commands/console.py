"""``puente audit serve``: the auditors' console (``puente.console``), run.

``serve`` runs the console logged in to Kafka as the console's own party (``console``, the only login that may
write the auditors' query log; the auditor's reads it): it records every query in the queries topic before
answering it, and catches the index up at start and every ``--refresh`` seconds. Its options, and the console's
accounts verbs (``users``), are registered by ``puente.commands.console_verbs``, which imports this module only
when ``serve`` runs: it loads the web framework, its server and its templates.
"""

from __future__ import annotations

import argparse

from broker.access import CONSOLE
from broker.audit_index import AlwaysKept, AuditIndex
from broker.credentials import require_party
from broker.oversight import QueryLog
from broker.topology import TopicNames
from policies import load_policy_set
from puente.commands._common import kafka, run, say, settings
from puente.commands._index import check_index, index_path
from puente.commands.console_verbs import open_accounts as _accounts
from puente.commands.console_verbs import register_audit_verbs
from puente.console import ConsoleConfig, IndexReader
from puente.console.server import Listen, catch_up_index, serve
from puente.errors import ConfigError

__all__ = ["register_audit_verbs", "serve_console"]


def serve_console(args: argparse.Namespace) -> int:
    """Run the console until Ctrl-C (`puente audit serve`): settings, listen address, index, accounts and Kafka
    are checked first, each refused in one line before anything is served."""
    cfg = settings(args)
    listen = Listen(args.host, args.port, args.tls_cert, args.tls_key, cfg.console_hosts).check()
    index, named = index_path(args.index)
    check_index(index, named)
    policy_set = load_policy_set(cfg.policy_dir)
    accounts = _accounts(args, cfg, create=False, policy_set=policy_set)
    if not accounts.list():
        accounts.close()
        raise ConfigError(f"no auditor accounts in {accounts.path}: add one with `puente audit users add NAME "
                          "--scope national`")
    conn = kafka(cfg, "puente-console")
    require_party(conn, "puente audit serve", CONSOLE)  # the one login that may write the auditors' query log
    names = TopicNames(cfg.topic_prefix)
    log = QueryLog(conn, names, cfg.audit_retention_days, new_chain=args.new_chain)

    def open_index() -> IndexReader:
        return AuditIndex(index, readonly=True)

    # Whether every request is https (TLS, or a proxy's names) is set by ``serve``, from ``listen``.
    config = ConsoleConfig(open_index, accounts, log, deployment=cfg.topic_prefix, envelope=AlwaysKept.of(policy_set),
                           page_rate=cfg.console_page_rate, page_burst=cfg.console_page_burst)
    catch_up = catch_up_index(cfg, conn, index)

    def ready(url: str) -> None:
        say(f"puente audit serve: the auditors' console is at {url} (index {index}; Ctrl-C stops it)", flush=True)

    try:
        run(serve(listen, config, log, catch_up=catch_up, index=index, refresh_s=args.refresh, ready=ready))
    except KeyboardInterrupt:
        pass
    finally:
        accounts.close()
    return 0

"""``puente users apply`` and ``puente acls plan|apply``: each party's Kafka login, what it may do, and what it may
cost the node (its client quotas)."""

from __future__ import annotations

import argparse

from broker.access import Acl, QuotaChanges, parties, plan, quota_changes, quota_plan
from broker.credentials import Former, apply_users, mass_cut_off
from broker.kafka import DEFAULT_USER, Admin, KafkaConnection, set_user_quotas, user_quotas
from broker.kafka.acls import MANY_INTRUDERS, AclChanges, acl_changes, apply_acls, cluster_acls, scram_users
from broker.topology import TopicNames
from policies import load_policy_set
from puente.commands._common import Subparsers, kafka, kafka_options, run, settings
from puente.errors import ConfigError, PuenteError
from puente.settings import PuenteSettings
from puente.strict import one_line


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("users", help="each party's Kafka login (SCRAM) and client configuration")
    verbs = users.add_subparsers(dest="verb", required=True)
    text = ("set a SCRAM-SHA-512 login for every party (each agency, the broker, each partner, the auditor, the "
            "console) and write its client.properties into its folder under PUENTE_LOGINS (default: PUENTE_KEYS); "
            "disable the login of every agency- or partner- user no longer named (a new password no one holds; its "
            "client.properties moved aside as .client.properties.former), and with --prune delete it; without "
            "--allow-many, refuse to disable or delete the logins of more than half of the agencies in use, or of "
            "more than half of the partners; run as the admin")
    apply_users_ = verbs.add_parser("apply", help="create the parties' logins; disable those of former parties, or "
                                                  "with --prune delete them", description=text,
                                    parents=[kafka_options()])
    apply_users_.add_argument("--rotate", action="store_true", help="give every party a new password")
    apply_users_.add_argument("--prune", action="store_true",
                              help="delete the login and client.properties of every agency- or partner- user the "
                                   "policy and settings no longer name (without it each login is disabled: given a "
                                   "new password no one holds, its client.properties moved aside)")
    # A policy folder or agency list named by mistake leaves many parties out at once, and each cut off would need a
    # new client.properties handed over outside Puente; a party ended on purpose is one or a few.
    apply_users_.add_argument("--allow-many", action="store_true",
                              help="disable (or with --prune delete) the logins of former parties even when they are "
                                   "more than half of the agencies in use, or of the partners; without it such a run "
                                   "is refused and changes nothing: check PUENTE_POLICY_DIR and PUENTE_AGENCIES first")
    apply_users_.set_defaults(func=_users, dry_run=False)
    plan_users = verbs.add_parser("plan", help="show what `users apply` would create, keep, disable or delete (exit 1 "
                                               "when it would change anything); changes nothing",
                                  parents=[kafka_options()])
    plan_users.add_argument("--prune", action="store_true",
                            help="plan `users apply --prune`: the login of every agency- or partner- user no longer "
                                 "named is one to remove, and counts as a change (without it it is one to disable "
                                 "while its client.properties is in place, else listed as former, disabled already)")
    plan_users.add_argument("--allow-many", action="store_true",
                            help="plan `users apply --allow-many`; without it a plan that cuts off the logins of "
                                 "more than half of the agencies in use, or of the partners, lists them, then ends "
                                 "with the refusal `users apply` gives (exit 3)")
    plan_users.set_defaults(func=_users, dry_run=True, rotate=False)

    acls = sub.add_parser("acls", help="Kafka ACLs derived from the agreements and the topology, and each party's "
                                       "client quotas")
    verbs = acls.add_subparsers(dest="verb", required=True)
    show = verbs.add_parser("plan", help="show what the cluster's ACLs and client quotas lack and hold beyond the "
                                         "plan for Puente's parties, whatever the resource, pattern, operation or "
                                         "quota (exit 1 when they differ)", parents=[kafka_options()])
    show.set_defaults(func=_plan)
    make = verbs.add_parser("apply", help="add what the plan names and remove every other rule of Puente's parties, "
                                          "and other logins' rules to read, write, delete or use this deployment's "
                                          "resources alone, then make the parties' client quotas the plan's (exit 1 "
                                          "when a change failed or a rule for every user or another login remains)",
                            parents=[kafka_options()])
    make.add_argument("--allow-many", action="store_true",
                      help="remove more than half of the rules Puente's parties hold, or more than "
                           f"{MANY_INTRUDERS} rules of other logins, if the plan says so (refused without it: a wrong "
                           "topic prefix, policy or agency list would cut every party off)")
    make.set_defaults(func=_apply)


def _users(args: argparse.Namespace) -> int:
    cfg = settings(args)
    _named_logins(cfg)
    policy = load_policy_set(cfg.policy_dir)
    admin = Admin(kafka(cfg, "puente-admin"))
    principals = parties(policy, cfg.agencies)

    # Deleting a login also deletes the password its party holds, for good: only --prune deletes. Without it a
    # former party's login is disabled, its password replaced by one no one holds, since a login left as it was
    # still authenticates, and its party, named again, would find its file and keep the password it had.
    mode: Former = "delete" if args.prune else "disable"
    # A plan lists what `apply` would do even when `apply` refuses it, then refuses as `apply` does: the operator sees
    # every party it would cut off before the one-line reason.
    logins = run(apply_users(admin, cfg.login_root, principals, rotate=args.rotate, former=mode,
                             dry_run=args.dry_run, allow_many=args.allow_many or args.dry_run))
    refusal = mass_cut_off(logins, mode, args.rotate) if args.dry_run and not args.allow_many else None
    planned = {"created": "create", "kept": "keep", "rotated": "rotate", "removed": "remove", "disabled": "disable"}
    for login in logins:
        action = planned.get(login.action, login.action) if args.dry_run else login.action
        why = f"  ({one_line(login.reason)})" if login.reason else ""  # why a password changes, or a file is rewritten
        print(f"{one_line(login.principal):<22} {action:<8} {one_line(str(login.config))}{why}")
    former = [login for login in logins if login.action in ("disabled", "former")]
    parties_ = f"{len(former)} former part{'y' if len(former) == 1 else 'ies'} not named any more"
    one = len(former) == 1
    if args.dry_run:
        # A former login whose file is gone was disabled by a run before: not a change, so a plan after it is clean.
        changes = sum(1 for login in logins if login.action not in ("kept", "former"))
        print(f"{len(logins) - len(former)} logins, {changes} to change; nothing was changed "
              f"(`puente users apply{' --prune' if args.prune else ''}` {'refuses' if refusal else 'does'} it)")
        if former:
            print(f"{parties_}: `puente users apply` disables {'its login' if one else 'each login'} (`former`: "
                  f"disabled already, no change), `--prune` would remove {'it' if one else 'them'} (`puente users "
                  f"plan --prune` counts {'it as a change' if one else 'them as changes'})")
        if refusal is not None:
            raise ConfigError(refusal)
        return 1 if changes else 0
    print(f"{len(logins) - len(former)} logins; hand each client.properties to its party only")
    rotated = [one_line(login.principal) for login in logins if login.action == "rotated"]
    if rotated:
        # A party reads its password once, at start: a running one goes on until Kafka's re-authentication (or its
        # next connection) cuts it off, then fails on the password it has.
        it = len(rotated) == 1
        print(f"new password{'' if it else 's'} for {', '.join(rotated)}: restart {'it' if it else 'each'} with its "
              f"new client.properties, or hand {'it' if it else 'each'} its new client.properties to restart with; "
              "a running party logs in with its old one, and Kafka cuts it off at its next authentication")
    if former:
        print(f"{parties_}: {'its login has' if one else 'each login has'} a new password no one holds, so it no "
              "longer authenticates, and its client.properties is moved aside (.client.properties.former); named "
              "again, a party gets a new password; `puente users apply --prune` deletes "
              f"{'it' if one else 'them'}")
    return 0


def _named_logins(cfg: PuenteSettings) -> None:
    """Refuse a PUENTE_LOGINS that is not a folder there, in one line naming it, before anything: `users apply`
    makes each party's folder under it, so a mistyped one would get folders of its own and every party a new
    password only that copy holds. A default (the keystore) is Puente's to make; a named one, as every other path
    named, is not (``given_folder``)."""
    if cfg.logins is not None and not cfg.logins.is_dir():
        what = "is not a folder" if cfg.logins.exists() else "does not exist"
        raise ConfigError(f"PUENTE_LOGINS {one_line(str(cfg.logins))} {what}: make it first (mkdir -m 700), or name "
                          "the folder the logins are in")


async def _changes(cfg: PuenteSettings, conn: KafkaConnection) -> tuple[AclChanges, list[str], QuotaChanges]:
    policy = load_policy_set(cfg.policy_dir)
    names = TopicNames(cfg.topic_prefix)
    wanted = plan(policy, names, cfg.agencies, cfg.broker_group)
    principals = parties(policy, cfg.agencies)
    current, others = await cluster_acls(Admin(conn))
    # A former party's login still there (no `users apply --prune` yet) keeps a trickle of a quota, never none.
    logins = await scram_users(Admin(conn))
    quotas = quota_changes(await user_quotas(conn), quota_plan(policy, cfg.agencies, logins=logins), principals)
    return (acl_changes(current, wanted, names, principals, admin=conn.username, observers=cfg.acl_observers),
            others, quotas)


def _print(changes: AclChanges, others: list[str], quotas: QuotaChanges, failed: list[str] | None = None) -> None:
    """The change (``+``, ``-``: a rule of a login no policy names on this deployment's resources alone is removed
    too), rules for every user and rules of logins no policy names reaching further than Puente's resources (``!``:
    only an operator may judge and remove them), other principals' rules (``?``), the same for the client
    quotas, then a summary, then each change that ``failed``. Every line goes out through ``one_line``: principals,
    resource names and hosts are the cluster's, and Kafka lets them hold any character, an escape sequence or a line
    break too."""
    lines = _lines(changes, others, quotas)
    lines += [f"FAILED {line}" for line in failed or ()]
    for line in lines:
        print(one_line(line))


def _print_acls_only(changes: AclChanges, others: list[str], quotas: QuotaChanges, failed: list[str]) -> None:
    """What `acls apply` did to the ACLs when its quota step then stopped on an error: the ACL changes stand on the
    cluster, so the operator is shown them before the error, and told that the quotas were not set."""
    lines = _lines(changes, others, QuotaChanges(set=(), remove=()))[:-1]
    lines += [f"FAILED {line}" for line in failed]
    lines.append(f"ACLs: the changes above were made ({len(failed)} failed); the client quotas were not set "
                 f"({len(quotas.set)} to set, {len(quotas.remove)} to remove): `puente acls plan` shows them")
    for line in lines:
        print(one_line(line))


def _quota_lines(quotas: QuotaChanges) -> list[str]:
    was = {(q.principal, q.key): q for q in quotas.replaced}
    lines = [f"+ quota {q}" + (f" (now {was[q.principal, q.key].amount})" if (q.principal, q.key) in was else "")
             for q in quotas.set]
    lines += [f"- quota {q}" for q in quotas.remove]
    lines += [f"? not Puente's to manage, left as it is: quota {q}"
              + (" (the default of every user without one of its own: the broker's and the admin's too)"
                 if q.principal == DEFAULT_USER else "") for q in quotas.others]
    return lines


def _observer_hint(acl: Acl) -> str:
    """What else to do about a stranger's rule only to describe: name its login, if it is a monitoring tool's."""
    if acl.operation in ("DESCRIBE", "DESCRIBE_CONFIGS") and acl.resource != "CLUSTER":
        return f", or name {acl.principal} in PUENTE_ACL_OBSERVERS if it is a monitoring tool's"
    return ""


# The resources and patterns a rule on this deployment's resources is on (``broker.access.ours_alone``, ``reaches``);
# a rule on any other is one ``broker.access.unbounded`` found: a USER resource, or one the client reads as UNKNOWN.
_NAMED_RESOURCES = ("TOPIC", "GROUP", "TRANSACTIONAL_ID")
_NAMED_PATTERNS = ("LITERAL", "PREFIXED")


def _on(acl: Acl, alone: str = "") -> str:
    """Where a rule of a login no policy names is: this deployment's topics, groups or transactional ids (followed by
    ``alone``), the cluster, or a resource or pattern Puente cannot bound (``broker.access.unbounded``: a party's
    delegation tokens are a USER resource, which librdkafka reads as UNKNOWN), which says nothing of this
    deployment's own resources, so it is never printed as one of them ("this deployment's unknowns")."""
    kind = f"{acl.resource.lower().replace('_', ' ')}s"
    if acl.resource == "CLUSTER":
        return "on the cluster"
    if acl.resource not in _NAMED_RESOURCES:
        return "on a resource the Kafka client cannot name: a party's delegation tokens, perhaps"
    if acl.pattern not in _NAMED_PATTERNS:
        return f"on {kind} by a pattern the Kafka client cannot name"
    return f"on this deployment's {kind}{alone}"


def _lines(changes: AclChanges, others: list[str], quotas: QuotaChanges) -> list[str]:
    lines = [*(f"+ {acl}" for acl in changes.add), *(f"- {acl}" for acl in changes.remove)]
    lines += [f"- {acl} (a login no policy names, {_on(acl, ' alone')})" for acl in changes.intruders]
    lines += [f"! for every user, Puente's parties included; not removed here, remove it if it is not needed: {acl}"
              for acl in changes.everyone]
    lines += [f"! a login no policy names, {_on(acl)}; not removed here, remove it if it is not needed"
              f"{_observer_hint(acl)}: {acl}" for acl in changes.strangers]
    flagged = {*changes.everyone, *changes.strangers}
    lines += [f"? not Puente's to manage, left as it is: {line}"
              for line in [*(str(a) for a in changes.others if a not in flagged), *others]]
    lines += _quota_lines(quotas)
    if not changes.drift and quotas.empty:
        return [*lines, "no change: the cluster's ACLs and client quotas are what the policy implies"]
    summary = f"{len(changes.add)} to add, {len(changes.removals)} to remove"
    if changes.everyone:
        summary += f"; {len(changes.everyone)} rule(s) for every user left to the operator"
    if changes.strangers:
        summary += f"; {len(changes.strangers)} rule(s) of logins no policy names left to the operator"
    if not quotas.empty:
        summary += f"; client quotas: {len(quotas.set)} to set, {len(quotas.remove)} to remove"
    return [*lines, summary]


def _plan(args: argparse.Namespace) -> int:
    cfg = settings(args)
    changes, others, quotas = run(_changes(cfg, kafka(cfg, "puente-admin")))
    _print(changes, others, quotas)
    if changes.mass_removal is not None:
        what = changes.mass_removal.split(" at once: ", 1)[0].removeprefix("refusing to ")
        print(f"! `puente acls apply` refuses this without --allow-many: it would {what} at once")
    return 1 if changes.drift or not quotas.empty else 0


def _apply(args: argparse.Namespace) -> int:
    cfg = settings(args)
    conn = kafka(cfg, "puente-admin")

    async def go() -> tuple[AclChanges, list[str], QuotaChanges, list[str]]:
        changes, others, quotas = await _changes(cfg, conn)
        if not args.allow_many and (refusal := changes.mass_removal) is not None:
            raise ConfigError(refusal)
        failed = await apply_acls(Admin(conn), changes)
        try:
            refused = await set_user_quotas(conn, quotas.requests())
        except PuenteError:
            _print_acls_only(changes, others, quotas, failed)
            raise
        return changes, others, quotas, failed + [f"quota User:{user}: {why}" for user, why in sorted(refused.items())]

    changes, others, quotas, failed = run(go())
    _print(changes, others, quotas, failed)
    return 1 if failed or changes.everyone or changes.strangers else 0

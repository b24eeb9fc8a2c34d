"""``puente keys generate|export-public|import-public|use|retire|list|init``: keys made and kept by their owners.

Each party runs ``generate`` on its own side, and the parties exchange public halves only, as PEM
SubjectPublicKeyInfo (``export-public`` on one side, ``import-public`` on the other)::

    partner P   generate --for partner P     gives P-enc-<g>, P-rcpt-<g> to the broker; gets broker-sign-<g>
    agency A    generate --for agency A      gives A-kex-<g> to the broker;             gets broker-kex-<g>
    broker      generate --for broker        gives broker-sign-<g> to partners and auditors, broker-kex-<g>
                                             to agencies; keeps its pseudonym keys

``init`` does all of that at once for a single-site trial or demo kept on one machine, each party in
its own folder: it makes every party's private keys there, which a deployment never does (its parties
make and keep their own). So every command that makes another party's private keys (``init``; ``generate``
for a partner or an agency) goes through one check, ``_refuse_deployment``: it refuses a deployment's keys
folder (``_deployment_shaped``: beside a compose.yaml, or holding the broker's own key files) unless
``--trial`` says the machine is a trial's. ``init`` leaves a mark in the folder it made keys in
(``TRIAL_MARK``; so does every single-site set-up, ``broker.keystore.Keystore.provision``), so the trial's
later runs need no ``--trial``; nothing else writes it, and no other party's key file counts, since one
``generate`` could make one.

That check goes by how the folder looks when it runs, so a partner's keys made in a fresh keys folder before
the broker's pass it. The broker's side goes by what the folder holds instead, whatever the order: ``generate
--for broker`` (``_refuse_others_keys``) and the broker's start (``broker.service.require_custody``) refuse a
keys folder holding another party's private keys (``broker.keystore.others_keys_problem``), naming the files to
move out, unless it is a trial's (``TRIAL_MARK``; ``generate --for broker --trial`` too).

A PEM can be swapped on its way, so ``export-public`` and ``import-public`` each print the key's
fingerprint (``sha256:ab12 cd34 ...``, SHA-256 of the raw public half): the two parties compare
them over another channel (a call, a signed letter), and ``import-public --fingerprint`` refuses a
key whose fingerprint is not the one its owner read out, storing nothing.

Every generation of a key-agreement key the broker holds keeps verifying what it MACs, so a rotation ends with the
broker's operator retiring the old one (``retire``: ``broker.keystore.Keystore.retire_kex``), for good, even if its
PEM is imported again. The rotation's own steps name that command where they run: ``use`` on the agency's side,
``import-public`` and ``generate --for broker`` on the broker's; ``list`` flags an owner whose older generation is
still not retired.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from broker.crypto import KeyKind, KeyRecord, parse_key_id, public_from_pem
from broker.crypto.keys import BROKER_OWNER, KEY_OWNER, compare_generations, fingerprint, parse_fingerprint
from broker.keystore import (
    BROKER_IN_USE,
    IN_USE,
    KEY_GENERATION,
    RETIRED_FORM,
    RETIRED_KEX,
    TRIAL_MARK,
    Holder,
    Keystore,
    holder_path,
    others_keys_problem,
    provision_all,
    trial_marked,
)
from broker.private_files import write_new
from policies import load_policy_set
from puente.commands._common import Subparsers, say, settings
from puente.errors import ConfigError, KeyMaterialError, PolicyError
from puente.settings import PuenteSettings
from puente.strict import TooLarge, case_slip, read_bounded

MAX_PEM_FILE = 16 * 1024  # a public key PEM is about 120 bytes

# Who receives the public half of each kind of key, once its owner has made it.
_RECEIVER = {
    KeyKind.PARTNER_ENCRYPTION: "the broker (to seal this partner's feed)",
    KeyKind.PARTNER_SIGNING: "the broker (its auditors check this partner's receipts)",
    KeyKind.BROKER_SIGNING: "every partner and auditor (to verify the broker's signatures)",
}
_NEEDS = {
    Holder.PARTNER: "broker-sign-<generation> from the broker",
    Holder.AGENCY: "broker-kex-<generation> from the broker",
    Holder.BROKER: "each partner's <P>-enc-<g> and <P>-rcpt-<g>, and each agency's <A>-kex-<g>",
}


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create, export and import keys").add_subparsers(dest="verb", required=True)

    text = "create one party's own private keys on its own side (refuses to replace a key)"
    gen = keys.add_parser("generate", help=text, description=text)
    gen.add_argument("--for", dest="holder", required=True, choices=[h.value for h in Holder],
                     help="whose keys: a partner's, an agency's or the broker's")
    gen.add_argument("ident", nargs="?", metavar="ID", help="the partner id or agency code (the broker needs none)")
    gen.add_argument("--dir", type=Path, help="where to write them (default: where PUENTE_KEYS says that party "
                                              "keeps its keys: <keys>/partners/<ID>, <keys>/agencies/<ID>, "
                                              "<keys>/broker)")
    gen.add_argument("--generation", default=KEY_GENERATION,
                     help=f"the keys' generation, the last part of their ids (default {KEY_GENERATION})")
    gen.add_argument("--trial", action="store_true",
                     help="a partner's or an agency's keys even in a keys folder shaped as a deployment's (beside a "
                          "compose.yaml, or holding the broker's own keys), or in a folder inside one (--dir), and the "
                          "broker's beside other parties' private keys: a trial on one machine; a deployment's parties "
                          "make their keys on their own side")
    gen.add_argument("--missing-only", action="store_true",
                     help="the broker only: beside its keys of --generation, make only the pseudonym keys it lacks "
                          "(its alert-reference key in a keystore made before references, a new agreement's key), "
                          "rotating nothing; never for a lost key, which its backup restores")
    gen.set_defaults(func=_generate, parser=gen)

    text = "write a key's public half as PEM SubjectPublicKeyInfo, to hand to the other side"
    out = keys.add_parser("export-public", help=text, description=text)
    out.add_argument("key_id", metavar="KEY_ID", help="e.g. COL-enc-2026a, SENAN-kex-2026a, broker-sign-2026a")
    out.add_argument("--dir", type=Path, help="the keystore holding it (default: its owner's folder under PUENTE_KEYS)")
    out.add_argument("--out", type=Path, metavar="FILE", help="write the PEM here (default: standard output)")
    out.set_defaults(func=_export_public)

    text = "store the other side's public half from a PEM file under its key id"
    imp = keys.add_parser("import-public", help=text, description=text)
    imp.add_argument("pem", type=Path, metavar="FILE.pem", help="a PEM SubjectPublicKeyInfo public key")
    imp.add_argument("--id", dest="key_id", required=True, metavar="KEY_ID",
                     help="its key id: owner, role (enc, kex: X25519; sign, rcpt: Ed25519) and generation")
    imp.add_argument("--dir", type=Path, help="the receiving keystore (default for a partner's or an agency's key: "
                                              "the broker's folder under PUENTE_KEYS; a broker key needs --dir)")
    imp.add_argument("--fingerprint", metavar="SHA256",
                     help="the fingerprint its owner read out (as export-public prints it, sha256:ab12 cd34 ...; "
                          "colons or no spaces also do): a key with another is refused and nothing is stored")
    imp.set_defaults(func=_import_public)

    text = ("an agency: MAC with this generation of its key-agreement key from the adapter's next start (once the "
            "broker has imported its public half), or pair with this generation of the broker's (once the agency "
            "holds several)")
    use = keys.add_parser("use", help=text, description=text)
    use.add_argument("key_id", metavar="KEY_ID", help="the agency's own key, e.g. SENAN-kex-2026b, or the broker's "
                                                      "one it holds, e.g. broker-kex-2026b (with --dir)")
    use.add_argument("--dir", type=Path, help="the agency's keystore (default: <keys>/agencies/<AGENCY>)")
    use.set_defaults(func=_use)

    text = ("the broker: retire an agency's key-agreement key (or its own) for good, once every record it MACed is "
            "processed (at once if it leaked): no MAC with it verifies again, even if its PEM is imported again")
    ret = keys.add_parser("retire", help=text, description=text)
    ret.add_argument("key_id", metavar="KEY_ID", help="e.g. SENAN-kex-2026a, or the broker's own broker-kex-2026a")
    ret.add_argument("--dir", type=Path, help="the broker's keystore (default: <keys>/broker)")
    ret.add_argument("--force", action="store_true",
                     help="retire it even when it is its owner's only key-agreement key not retired: everything MACed "
                          "with it is then dead-lettered until a new generation is in use (a leaked key)")
    ret.set_defaults(func=_retire)

    text = ("list a keystore's keys, and flag each owner whose older key-agreement generation still verifies beside "
            "its newer one, naming the `keys retire` to run")
    lst = keys.add_parser("list", help=text, description=text)
    lst.add_argument("--dir", type=Path, help="the keystore (default: the broker's, <keys>/broker)")
    lst.set_defaults(func=_list)

    text = ("a single-site trial or demo: make EVERY party's private keys on this machine, each in its own folder, "
            "only public halves crossing; a deployment has each party run `keys generate` on its own side and the "
            "broker `keys import-public` the halves it is handed")
    init = keys.add_parser("init", help=text, description=text)
    init.add_argument("--trial", action="store_true",
                      help="make them even in a keys folder shaped as a deployment's (beside a compose.yaml, or "
                           "holding the broker's own keys, unless an earlier `keys init` made them): a trial on one "
                           "machine")
    init.set_defaults(func=_init)


def _check_id(holder: Holder, ident: str, cfg: PuenteSettings) -> None:
    """Refuse (ConfigError, one line) an id keys would be made for and no one named by: an agency PUENTE_AGENCIES
    does not name exactly (``snm``), the broker under another name, a partner id that is no key owner's name or
    differs only in case from one the policy names (``col``). A partner the policy does not name yet may make its
    keys: it makes them on its own side, often before the ministry adds it (with these keys' ids) to
    partners.yaml, and needs no copy of the ministry's policy to do so."""
    what = f"keys generate --for {holder}: {ident[:60]!r}"
    if holder is Holder.AGENCY and ident not in cfg.agencies:
        raise ConfigError(f"{what} names no agency of PUENTE_AGENCIES (ids are exact, case included): "
                          f"{', '.join(sorted(cfg.agencies))}")
    if holder is Holder.BROKER and ident != BROKER_OWNER:
        raise ConfigError(f"{what}: the broker's keys take no id (or {BROKER_OWNER!r})")
    if holder is not Holder.PARTNER:
        return
    if not KEY_OWNER.fullmatch(ident):
        raise ConfigError(f"{what} is no partner id: letters, digits, '.', '_' and '-', at most 64, a letter or "
                          "digit first")
    try:
        named = load_policy_set(cfg.policy_dir).partners
    except PolicyError:  # a partner's own machine may hold no policy: the case check below needs one
        return
    near = case_slip(ident, named)
    if near:
        raise ConfigError(f"{what} names no partner of partners.yaml; did you mean {near}? (ids are exact, case "
                          "included)")


def _generate(args: argparse.Namespace) -> int:
    holder = Holder(args.holder)
    ident = args.ident if args.ident is not None else (BROKER_OWNER if holder is Holder.BROKER else None)
    parser: argparse.ArgumentParser = args.parser
    if ident is None:  # usage, as argparse's own errors (exit 2): the command line lacks what it needs
        parser.error(f"--for {holder} needs the {holder}'s id, e.g. "
                          f"{'COL' if holder is Holder.PARTNER else 'SENAN'}")
    if args.missing_only and holder is not Holder.BROKER:
        parser.error("--missing-only is for the broker's pseudonym keys only (--for broker)")
    cfg = settings(args)
    _check_id(holder, ident, cfg)
    if holder is not Holder.BROKER and not args.trial:
        _refuse_deployment(f"keys generate --for {holder} {ident} makes {holder} {ident}'s private keys, which in a "
                           f"deployment only {ident} makes, on its own machine", cfg.keys, args.dir,
                           f"run it on {ident}'s own machine, in its own keys folder")
    if holder is Holder.BROKER and not args.trial:
        _refuse_others_keys(cfg.keys)
    store = Keystore(args.dir if args.dir is not None else holder_path(cfg.keys, holder, ident))
    agreements = sorted(load_policy_set(cfg.policy_dir).agreements) if holder is Holder.BROKER else []
    made = store.generate_own(holder, ident, generation=args.generation, now=datetime.now(UTC), agreements=agreements,
                              missing_only=args.missing_only)
    whose = "the broker" if holder is Holder.BROKER else f"{holder} {ident}"
    # The folder is printed as typed (--dir) or as PUENTE_KEYS names it: escaped, as every line (``say``).
    say(f"wrote {len(made)} private key(s) of {whose} in {store.path} (mode 0600; they never leave it):")
    say(*(f"  {record.key_id}.json  {record.kind}{f' ({record.kind.algorithm})' if record.kind.algorithm else ''}"
          for record in made))
    say("hand over these public halves (PEM, no secret in them):")
    for record in made:
        receiver = _receiver(record)
        if receiver is None:
            say(f"  {record.key_id}: none, a {record.kind} key has no public half and stays here")
            continue
        say(f"  {record.key_id} to {receiver}:",
            f"    puente keys export-public {record.key_id} --dir {store.path} --out {record.key_id}.pem")
    say("each receiver stores one with: puente keys import-public KEY_ID.pem --id KEY_ID [--dir ITS_KEYSTORE] "
        "--fingerprint FP, FP being what export-public printed, read to it over another channel")
    say(f"and import here ({store.path}) the public halves you get: {_NEEDS[holder]}")
    kex = [record.key_id for record in made if record.kind is KeyKind.KEY_AGREEMENT and record.owner == BROKER_OWNER]
    if holder is Holder.BROKER and kex:
        say(f"an agency that already holds an older broker key pairs with {kex[0]} once it has imported it and run",
            f"  puente keys use {kex[0]} --dir ITS_KEYSTORE")
        _say_retire(store, BROKER_OWNER, "every agency pairs with the new one (`keys use`) and")
    if holder is Holder.AGENCY:
        in_use = store.agency_key_in_use(ident)
        if all(in_use.key_id != record.key_id for record in made):
            say(f"{ident}'s adapter keeps MACing with {in_use.key_id} (the broker would dead-letter what a key it "
                f"does not hold MACed): once the broker has imported the new public half, run",
                f"  puente keys use {made[0].key_id} --dir {store.path}")
    return 0


def _use(args: argparse.Namespace) -> int:
    parsed = parse_key_id(args.key_id)
    if parsed.owner == BROKER_OWNER:
        if args.dir is None:
            raise ConfigError(f"keys use {args.key_id}: say which agency's keystore pairs with the broker's key with "
                              "--dir (e.g. <keys>/agencies/<A>)")
        store = Keystore(args.dir)
        try:
            paired: str | None = store.broker_key_in_use().key_id
        except KeyMaterialError:
            paired = None  # several held and none named yet: the broker's operator knows its old one
        record = store.use_agency_key(args.key_id)
        say(f"the adapter of {store.path} pairs with {record.key_id} from its next start (named in "
            f"{store.path / BROKER_IN_USE}); the broker verifies only the pairs of keys it holds under these ids")
        if paired is not None and paired != record.key_id:
            say(f"  the broker's {paired} keeps verifying until retired: once every agency pairs with "
                f"{record.key_id} and the broker has processed what they MACed before, its operator runs: puente "
                f"keys retire {paired}")
        return 0
    store = Keystore(args.dir if args.dir is not None else holder_path(settings(args).keys, Holder.AGENCY,
                                                                         parsed.owner))
    before = _agency_key_before(store, parsed.owner, parsed.generation)
    record = store.use_agency_key(args.key_id)
    say(f"{parsed.owner}'s adapter MACs with {record.key_id} from its next start (named in {store.path / IN_USE}); "
        f"the broker dead-letters what it cannot verify, so it must already hold this key's public half")
    for old in before:
        if old != record.key_id:
            # The broker's operator runs it, in the broker's folder: `keys retire` takes that by default.
            say(f"  {old} keeps verifying at the broker until retired: once the broker has processed every record "
                f"{old} MACed (this adapter's, from before its restart on {record.key_id}), the broker's operator "
                f"runs: puente keys retire {old}")
    return 0


def _agency_key_before(store: Keystore, agency: str, generation: str) -> list[str]:
    """The agency's key the adapter MACs with before ``keys use`` names another: the one named in use (or the one
    held), or, when several are held and none is named, every generation older than ``generation`` held here. Each
    keeps verifying at the broker until its operator retires it."""
    try:
        return [store.agency_key_in_use(agency).key_id]
    except KeyMaterialError:
        pass  # none held, or several and none named: the older ones are all candidates
    try:
        held = store.generations(agency, KeyKind.KEY_AGREEMENT)
    except KeyMaterialError:
        return []  # `use_agency_key` names what does not load
    return sorted(r.key_id for r in held
                  if compare_generations(parse_key_id(r.key_id).generation, generation) == -1)


def _say_retire(store: Keystore, owner: str, once: str) -> None:
    """Name, for each older key-agreement generation of ``owner`` still verifying in the broker's ``store``
    (``Keystore.older_kex``), the `keys retire` that ends it, and when to run it (``once``: what must happen first)."""
    for whose, older, newest in store.older_kex():
        if whose != owner:
            continue
        for old in older:
            say(f"  {old} keeps verifying beside {newest} until retired: once {once} the broker has processed every "
                f"record {old} MACed (at once if it leaked), run: puente keys retire {old} --dir {store.path}")


def _retire(args: argparse.Namespace) -> int:
    store = Keystore(args.dir if args.dir is not None else holder_path(settings(args).keys, Holder.BROKER,
                                                                         BROKER_OWNER))
    record, done = store.retire_kex(args.key_id, force=args.force)
    if done:
        say(f"retired {record.key_id} in {store.path} (listed in {RETIRED_KEX}, its file moved aside as "
            f"{record.key_id}{RETIRED_FORM}): the broker verifies nothing MACed "
            "with it from its next read of the folder (a running broker's within seconds), dead-lettering it as "
            "origin, and refuses its PEM if imported again; a backup of the folder older than this retire brings "
            "the key back: back the folder up again"
            + ("; every agency whose adapter still pairs with it (not yet switched by `keys use` on its side) is "
               "dead-lettered from now on" if record.owner == BROKER_OWNER else ""))
    else:
        say(f"{record.key_id} was retired in {store.path} already; nothing changed")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = Keystore(args.dir if args.dir is not None else holder_path(settings(args).keys, Holder.BROKER,
                                                                         BROKER_OWNER))
    # A list or a moved-aside key that does not read stops the listing: it could not say what is retired.
    retired = store.retired_keys()
    parsed = {record.key_id: record for record in store.parsed_keys()}
    ids = store.key_ids()
    say(f"{len(ids)} key file(s) in {store.path}:")
    for key_id in ids:
        record = parsed.get(key_id)
        if record is None:
            say(f"  {key_id}  does not read as a key file")
            continue
        half = "private and public" if record.secret is not None else "public half"
        say(f"  {key_id}  {record.kind}  {half}{'  retired' if key_id in retired else ''}")
    for key_id in sorted(retired.keys() - set(ids)):
        say(f"  {key_id}  {KeyKind.KEY_AGREEMENT}  public half  retired")
    # An agency's own folder (it holds its private half) retires nothing: the broker's operator does, in its folder.
    agencies = sorted({record.owner for record in parsed.values() if record.kind is KeyKind.KEY_AGREEMENT
                       and record.secret is not None and record.owner != BROKER_OWNER})
    for owner, older, newest in store.older_kex():
        for old in older:
            if agencies:
                say(f"older generation held: {old}, beside {owner}'s {newest}, verifies at the broker until retired "
                    f"there: once {newest} is in use and the broker has processed every record {old} MACed (at once "
                    f"if it leaked), the broker's operator runs `puente keys retire {old}` in the broker's folder "
                    "(nothing to do if done)")
            else:
                say(f"older generation not retired: {old} still verifies what it MACs beside {owner}'s {newest}: once "
                    f"every record it MACed is processed (at once if it leaked), run: puente keys retire {old} --dir "
                    f"{store.path}")
    return 0


def _receiver(record: KeyRecord) -> str | None:
    if record.kind is KeyKind.KEY_AGREEMENT:
        if record.owner == BROKER_OWNER:
            return "every agency (to agree its ingress MAC key)"
        return "the broker (to agree this agency's ingress MAC key)"
    return _RECEIVER.get(record.kind)


def _owner_folder(root: Path, key_id: str) -> Path:
    parsed = parse_key_id(key_id)
    if parsed.kind in (KeyKind.PARTNER_ENCRYPTION, KeyKind.PARTNER_SIGNING):
        return holder_path(root, Holder.PARTNER, parsed.owner)
    if parsed.kind is KeyKind.KEY_AGREEMENT and parsed.owner != BROKER_OWNER:
        return holder_path(root, Holder.AGENCY, parsed.owner)
    return holder_path(root, Holder.BROKER, BROKER_OWNER)  # its own keys and the agreements' pseudonym keys


def _export_public(args: argparse.Namespace) -> int:
    folder = args.dir if args.dir is not None else _owner_folder(settings(args).keys, args.key_id)
    store = Keystore(folder)
    pem = store.public_pem(args.key_id)
    public = store.load(args.key_id).public or b""  # public_pem refused a key without one
    if args.out is None:
        sys.stdout.write(pem.decode("ascii"))
        # On standard error, so standard output stays one PEM a pipe can take as it is.
        print(f"{args.key_id} fingerprint {fingerprint(public)}: read it to the receiver over another channel",
              file=sys.stderr)
        return 0
    try:
        # Only a new name: what is there may be the private key being exported, a store or a login.
        write_new(args.out, pem, 0o644)
    except FileExistsError:
        raise ConfigError(f"--out {args.out}: something is already there; nothing was written (name a new file, "
                          "or remove the old one first if it is an old export)") from None
    except OSError as exc:
        raise ConfigError(f"--out {args.out}: cannot write: {exc.strerror}") from None
    say(f"wrote the public half of {args.key_id} to {args.out}; give it to the other side, who runs: "
        f"puente keys import-public {args.out} --id {args.key_id} --fingerprint '{fingerprint(public)}'",
        "  read the receiver that fingerprint over another channel than the file's (a call, say): it shows the "
        "file is the one you wrote")
    return 0


def _import_public(args: argparse.Namespace) -> int:
    parsed = parse_key_id(args.key_id)
    if args.dir is not None:
        folder = args.dir
    elif parsed.owner == BROKER_OWNER:
        raise ConfigError(f"keys import-public {args.key_id}: say whose keystore receives the broker's key with "
                          "--dir (e.g. <keys>/partners/<P> or <keys>/agencies/<A>)")
    else:
        folder = holder_path(settings(args).keys, Holder.BROKER, BROKER_OWNER)
    expected = _expected_fingerprint(args)
    pem = _read_pem(args.pem)
    now = datetime.now(UTC)
    found = fingerprint(public_from_pem(pem, key_id=args.key_id, created_at=now, source=str(args.pem)).public or b"")
    if expected is not None and found != expected:
        raise KeyMaterialError(f"{args.pem}: key {args.key_id} has fingerprint {found}, not the {expected} given "
                               "with --fingerprint: not the key its owner made; nothing stored")
    record, written = Keystore(folder).import_public(pem, args.key_id, source=str(args.pem), now=now)
    where = Path(folder) / f"{record.key_id}.json"
    say(f"stored {record.key_id} ({record.kind}, public half only) in {where}" if written
        else f"{record.key_id}: the same public half is already in {where}; nothing changed")
    checked = ("matches --fingerprint" if expected is not None
               else "compare it with the one its owner reads out over another channel")
    say(f"  fingerprint {found}: {checked}")
    if record.owner == BROKER_OWNER and record.kind is KeyKind.KEY_AGREEMENT and written:
        held = Keystore(folder).generations(BROKER_OWNER, KeyKind.KEY_AGREEMENT)
        if len(held) > 1:
            say(f"  the adapter pairs with it from its next start once you run: puente keys use {record.key_id} "
                f"--dir {folder}")
    if record.owner != BROKER_OWNER and record.kind is KeyKind.KEY_AGREEMENT and written:
        _say_retire(Keystore(folder), record.owner, f"{record.owner}'s adapter MACs with the new one (`keys use`) and")
    return 0


def _expected_fingerprint(args: argparse.Namespace) -> str | None:
    if args.fingerprint is None:
        return None
    expected = parse_fingerprint(args.fingerprint)
    if expected is None:  # the text is not quoted back: it could be anything pasted
        raise ConfigError("--fingerprint: expected a fingerprint as export-public prints it: sha256: and 64 hex "
                          "digits (spaces or colons between them may stay)")
    return expected


def _read_pem(path: Path) -> bytes:
    try:
        data = read_bounded(path, MAX_PEM_FILE)
    except TooLarge:
        raise KeyMaterialError(f"{path}: too large to be a public key PEM") from None
    except OSError as exc:
        raise KeyMaterialError(f"{path}: cannot read: {exc.strerror}") from None
    return data


def _deployment_shaped(root: Path) -> str | None:
    """Why the keys folder ``root`` looks like a deployment's, where no one but a party makes its own private keys,
    or None. Two shapes are told: the folder compose.yaml mounts (``root`` beside a ``compose.yaml``), and one whose
    broker folder holds the broker's own keys (``_broker_shaped``). Never told by the absence of other parties' key
    files: one ``keys generate --for partner`` would make some, and disarm the check."""
    beside = root.absolute().parent / "compose.yaml"
    if beside.is_file():
        return f"{root} is the keys folder of the deployment beside {beside}"
    return _broker_shaped(root)


def _broker_shaped(root: Path) -> str | None:
    """Why ``root`` is a deployment's keys folder by its ``broker/`` folder, or None: it holds the broker's own key
    files (``broker-*.json``), as ``keys generate --for broker`` leaves them, and ``keys init`` did not mark ``root``
    a trial's (``TRIAL_MARK``)."""
    broker = holder_path(root, Holder.BROKER, BROKER_OWNER)
    try:
        held = broker.is_dir() and any(broker.glob("broker-*.json"))
    except OSError as exc:
        return f"cannot look into {broker}: {exc.strerror}"
    if not held or trial_marked(root):
        return None
    # A trial's are made by `keys init`, which leaves TRIAL_MARK beside them (since this release: a trial's folder
    # made before has none, and `keys init --trial` once marks it).
    return (f"{root} holds the broker's own keys and no {TRIAL_MARK} mark of a trial's `keys init`, as a deployment's "
            f"keys folder does (a trial made before that mark existed: `puente keys init --trial` once marks it)")


def _refuse_deployment(doing: str, root: Path, folder: Path | None, fix: str) -> None:
    """Raise ConfigError (one line: ``doing``, why, what to check, ``fix``) when another party's private keys would be
    made in the deployment's keys folder ``root`` (``_deployment_shaped``), or in ``folder`` (``--dir``) inside it
    or inside any folder holding the broker's own keys (``_broker_shaped``). The one check of every command that
    makes another party's private keys; the caller skips it for ``--trial`` (a trial on one machine)."""
    problem = _deployment_shaped(root)
    if folder is not None:
        real = Path(os.path.realpath(folder))
        if problem is not None and not real.is_relative_to(os.path.realpath(root)):
            problem = None  # --dir elsewhere: its own place, as before
        # Not a compose.yaml beside a folder above --dir: a partner may make its keys in a clone of this repository.
        problem = problem or next((found for above in (real, *real.parents) for found in [_broker_shaped(above)]
                                   if found is not None), None)
    if problem is not None:
        check = "PUENTE_KEYS" if folder is None else "--dir and PUENTE_KEYS"
        raise ConfigError(f"{doing}: {problem}; nothing was written (check {check}: {fix}; --trial: a single-site "
                          "trial on one machine all the same)")


def _refuse_others_keys(root: Path) -> None:
    """Raise ConfigError (one line naming the files) when the keys root ``root``, the one the broker starts from,
    holds another party's private keys and is no trial's (``others_keys_problem``): whatever order the keys were
    made in, a partner's made there first included, which the broker's start refuses as well."""
    problem = others_keys_problem(root)
    if problem is not None:
        raise ConfigError(f"keys generate --for broker makes the broker's keys under {root}, but {problem}; nothing "
                          "was written (check PUENTE_KEYS; --trial: a single-site trial on one machine all the same)")


def _init(args: argparse.Namespace) -> int:
    cfg = settings(args)
    if not args.trial:
        _refuse_deployment("keys init makes every party's private keys on this machine, for a single-site trial; a "
                           "deployment's parties each run `puente keys generate` on their own side and the broker "
                           "imports the public halves (`puente keys import-public`)", cfg.keys, None,
                           "this is for a trial's keys folder only")
    made = provision_all(cfg)  # which marks the folder a trial's only once it goes on to make keys
    say(f"keys ready under {made.root} for a single-site trial: every party's private keys were made on this machine, "
        "each in its own folder; only public halves crossed:",
        "  broker/             its signing, key-agreement and pseudonym keys; partners' and agencies' public halves",
        "  partners/<id>/      each partner's decryption and receipt-signing keys; the broker's verify key",
        "  agencies/<code>/    each agency's key-agreement key; the broker's key-agreement public half",
        "  auditor/            public halves only: the broker's verify key and each partner's receipt key")
    stores = [made.broker, *made.partners.values(), *made.agencies.values()]
    retired = [path for store in stores for path in store.retired_files()]
    if retired:
        say(f"puente: warning: {len(retired)} retired shared agency-mac key file(s) remain, e.g. {retired[0]}; "
            "nothing uses them any more: delete them", file=sys.stderr)
    return 0

"""Redaction of what must not leave the machine in a report pasted under an issue.

One `Redactor` holds the rules for one run and counts what each kind of rule replaced, so the
report can say what was hidden. Rules run in a fixed order: secrets first (the values of
variables named like secrets, credentials inside URLs, known token shapes, `name=value` pairs
whose name says secret, the user's own patterns), then identity (home directory, user name, host
name) — a secret that contains the home directory is still hidden whole.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Union

from tritondoctor.share.host import short_hash

REDACTED = "[REDACTED]"
USER_MARK = "[user]"

# Kinds, in the order the summary line names them: (counter key, singular, plural).
KINDS = (
    ("secret", "secret variable value", "secret variable values"),
    ("url", "credential in a URL", "credentials in URLs"),
    ("token", "token", "tokens"),
    ("custom", "match of --redact", "matches of --redact"),
    ("home", "home directory path", "home directory paths"),
    ("user", "user name", "user names"),
    ("host", "host name", "host names"),
)

# A variable or key whose name says it holds a secret. `key` and `auth` only as whole words of
# the name (API_KEY, SSH_AUTH_SOCK, but not KEYBOARD or AUTHOR); never PWD (the directory).
SECRET_NAME = re.compile(
    r"(?i)token|secret|passw(?:or)?d|passphrase|credential|cookie"
    r"|(?:^|[_.-])(?:api|access|private|auth)?[_-]?keys?(?:$|[_.-])"
    r"|(?:^|[_.-])auth(?:$|[_.-]|orization|entication)"
)

# Known token shapes, anywhere in the text.
TOKEN_SHAPES = (
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",  # GitHub classic tokens
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",  # GitHub fine-grained tokens
    r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b",  # AWS access key ids
    r"\bhf_[A-Za-z0-9]{20,}",  # Hugging Face
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
    r"\bnvapi-[A-Za-z0-9_-]{20,}",  # NGC API keys
    r"\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}",  # OpenAI / Anthropic style
    r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
    r"\bAIza[A-Za-z0-9_-]{35}",  # Google API keys
)

# Generic accounts say nothing about who ran the report, and replacing them would mangle
# ordinary words in findings ("running as root").
GENERIC_USERS = frozenset({"root", "user", "admin", "ubuntu", "debian", "nobody", "jovyan", "runner"})
NOT_HOST_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
MIN_SECRET_LEN = 4
MIN_NAME_LEN = 3  # user and host names shorter than this would hit ordinary words

Replacement = Union[str, Callable[["re.Match[str]"], str]]


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: "re.Pattern[str]"
    replacement: Replacement


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def _assignment(match: "re.Match[str]") -> str:
    name, sep, quote, value = match.group(1), match.group(2), match.group(3), match.group(4)
    if not is_secret_name(name) or value in (REDACTED, "[REDACTED") or value.lower() in ("bearer", "basic"):
        return match.group(0)
    return f"{name}{sep}{quote}{REDACTED}"


def _literal(values: Iterable[str], boundary: str = "") -> "re.Pattern[str] | None":
    ordered = sorted({v for v in values if v}, key=len, reverse=True)
    if not ordered:
        return None
    alternatives = "|".join(re.escape(v) for v in ordered)
    if not boundary:
        return re.compile(f"(?:{alternatives})")
    return re.compile(f"(?<![{boundary}])(?:{alternatives})(?![{boundary}])")


def host_pseudonym(name: str) -> str:
    """A stable short stand-in: the same host gets the same name in every report."""
    return f"host-{short_hash(name.lower(), 8)}"


def secret_rules(environ: Mapping[str, str], patterns: Iterable[str] = ()) -> list[Rule]:
    rules: list[Rule] = []
    values = [v for k, v in environ.items() if is_secret_name(k) and len(v) >= MIN_SECRET_LEN]
    literal = _literal(values)
    if literal is not None:
        rules.append(Rule("secret", literal, REDACTED))
    rules.append(Rule("url", re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:'\"]+(?::[^\s/@'\"]*)?@"),
                      rf"\1{REDACTED}@"))
    rules += [Rule("token", re.compile(shape), REDACTED) for shape in TOKEN_SHAPES]
    rules.append(Rule("token", re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/-]{8,}=*"),
                      rf"\1\2{REDACTED}"))
    rules.append(Rule("token", re.compile(
        r"(?<![A-Za-z0-9_])([A-Za-z][A-Za-z0-9_.-]*)(\s*[:=]\s*)([\"']?)([^\s\"',;&]{4,})"), _assignment))
    rules += [Rule("custom", re.compile(p), REDACTED) for p in patterns]
    return rules


def home_dirs(environ: Mapping[str, str]) -> set[str]:
    homes = {environ.get("HOME", ""), _pwd_field("pw_dir")}
    homes |= {os.path.realpath(h) for h in homes if h}
    return {h.rstrip("/") for h in homes if h and h.rstrip("/") not in ("", "/")}


def user_names(environ: Mapping[str, str]) -> set[str]:
    names = {environ.get("USER", ""), environ.get("LOGNAME", ""), _pwd_field("pw_name")}
    return {n for n in names if len(n) >= MIN_NAME_LEN and n not in GENERIC_USERS}


def host_names(environ: Mapping[str, str], extra: Iterable[str] = ()) -> set[str]:
    from tritondoctor.share.host import host_name, node_id

    names = {host_name(), environ.get("HOSTNAME", ""), node_id(environ)[0] or "", *extra}
    names |= {n.split(".")[0] for n in names}
    return {n for n in names if len(n) >= MIN_NAME_LEN and n.lower() not in NOT_HOST_NAMES and not n.isdigit()}


def identity_rules(environ: Mapping[str, str], keep_host: bool = False) -> list[Rule]:
    rules: list[Rule] = []
    homes = _literal(home_dirs(environ))
    if homes is not None:
        # A home of /home/al must not eat /home/alice: the path must end there or continue with "/".
        rules.append(Rule("home", re.compile(f"{homes.pattern}(?![^/\\s\"'`:;,)\\]}}])"), "~"))
    users = _literal(user_names(environ), boundary="A-Za-z0-9")
    if users is not None:
        rules.append(Rule("user", users, USER_MARK))
    hosts = None if keep_host else _literal(host_names(environ), boundary="A-Za-z0-9-")
    if hosts is not None:
        rules.append(Rule("host", hosts, lambda m: host_pseudonym(m.group(0))))
    return rules


class Redactor:
    """Applies rules to text and to JSON-like structures, counting replacements per kind."""

    def __init__(self, rules: Iterable[Rule], keep_host: bool = False) -> None:
        self.rules = list(rules)
        self.keep_host = keep_host
        self.counts: Counter[str] = Counter()

    @classmethod
    def for_environment(cls, environ: Mapping[str, str], patterns: Iterable[str] = (),
                        keep_host: bool = False) -> "Redactor":
        return cls(secret_rules(environ, patterns) + identity_rules(environ, keep_host), keep_host)

    def text(self, text: str) -> str:
        for rule in self.rules:
            text = rule.pattern.sub(self._counting(rule), text)
        return text

    def _counting(self, rule: Rule) -> Callable[["re.Match[str]"], str]:
        # Counted per real change: the `name=value` rule matches every pair and gives back
        # the ones whose name is not a secret unchanged.
        def replace(match: "re.Match[str]") -> str:
            new = rule.replacement(match) if callable(rule.replacement) else match.expand(rule.replacement)
            if new != match.group(0):
                self.counts[rule.kind] += 1
            return new

        return replace

    def walk(self, value: Any, key: str = "") -> Any:
        """Every string of a JSON-like value redacted (dict keys too); a string under a key
        named like a secret is hidden whole."""
        if isinstance(value, str):
            if key and is_secret_name(key) and value and value != REDACTED:
                self.counts["secret"] += 1
                return REDACTED
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.walk(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.walk(v, key) for v in value]
        return value

    def host(self, name: str | None) -> str | None:
        """A host or node name in a field of its own, whatever its length."""
        if not name or self.keep_host:
            return name
        self.counts["host"] += 1
        return host_pseudonym(name)

    def summary(self) -> str:
        parts = [f"{n} {singular if n == 1 else plural}" for kind, singular, plural in KINDS
                 if (n := self.counts.get(kind, 0))]
        looked_for = "secrets, tokens, credentials in URLs, the home directory, user and host names"
        kept = " Host names were kept (--keep-host)." if self.keep_host else ""
        if not parts:
            return f"Redacted: nothing found ({looked_for} were looked for).{kept}"
        return f"Redacted: {', '.join(parts)} ({looked_for} were looked for).{kept}"

    def counts_json(self) -> dict[str, int]:
        return {kind: self.counts.get(kind, 0) for kind, _, _ in KINDS}


def _pwd_field(field: str) -> str:
    try:
        import pwd

        return str(getattr(pwd.getpwuid(os.getuid()), field))
    except (ImportError, KeyError, OSError):
        return ""

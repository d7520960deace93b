"""Redaction: every kind of planted secret and identity is hidden, versions and paths survive."""

from __future__ import annotations

from tritondoctor.share.redact import REDACTED, Redactor, host_pseudonym, is_secret_name

HOME = "/home/alice_q"
ENV = {
    "HOME": HOME,
    "USER": "alice_q",
    "LOGNAME": "alice_q",
    "HOSTNAME": "gpu-node-17.cluster.example",
    "PWD": "/srv/work",
    "HF_TOKEN": "hf_PlantedHuggingFaceToken0123456789",
    "MY_DB_PASSWORD": "hunter2-planted",
    "https_proxy": "http://proxyuser:proxypass@proxy.example:3128",
}

TOKENS = {
    "github classic": "ghp_PlantedGithubToken0123456789abcdefABCD",
    "github fine-grained": "github_pat_11PLANTED0123456789_abcdefghijklmnopqrstuvwxyz",
    "aws": "AKIAPLANTED0123ABCDE",
    "hf": "hf_AnotherPlantedHfToken0123456789ab",
    "slack": "xoxb-123456789012-planted-slack-token",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlUGxhbnRlZDEyMw",
    "ngc": "nvapi-PlantedNgcKey0123456789abcdefghij",
    "openai": "sk-proj-PlantedOpenAiKey0123456789abcd",
}


def redactor(**kwargs: object) -> Redactor:
    return Redactor.for_environment(ENV, **kwargs)  # type: ignore[arg-type]


def test_secret_names() -> None:
    for name in ("HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "API_KEY", "NGC_API_KEY", "DB_PASSWORD", "PASSWD",
                 "GOOGLE_APPLICATION_CREDENTIALS", "SSH_AUTH_SOCK", "AUTHORIZATION", "key"):
        assert is_secret_name(name), name
    for name in ("PWD", "KEYBOARD_LAYOUT", "MONKEY", "AUTHOR", "LD_LIBRARY_PATH", "PATH", "HOME"):
        assert not is_secret_name(name), name


def test_every_token_shape_is_hidden() -> None:
    r = redactor()
    text = "\n".join(f"{kind}: found {token} in the log" for kind, token in TOKENS.items())
    out = r.text(text)
    for token in TOKENS.values():
        assert token not in out
    assert r.counts["token"] == len(TOKENS)
    assert "github classic: found [REDACTED] in the log" in out


def test_secret_values_url_credentials_and_assignments() -> None:
    r = redactor()
    out = r.text(
        "value hf_PlantedHuggingFaceToken0123456789 and hunter2-planted\n"
        "proxy http://proxyuser:proxypass@proxy.example:3128 ok\n"
        "GET /models?token=0f3a9c2b7d1e4f5a6b8c9d0e1f2a3b4c&x=1\n"
        "Authorization: Bearer abcdefghijklmnop.qrstuvwx\n"
        "password: s3cr3t-Planted numpy==1.26.4 version=3.11.7 GLIBCXX_3.4.30\n"
    )
    for secret in ("hf_PlantedHuggingFaceToken0123456789", "hunter2-planted", "proxyuser", "proxypass",
                   "0f3a9c2b7d1e4f5a6b8c9d0e1f2a3b4c", "abcdefghijklmnop", "s3cr3t-Planted"):
        assert secret not in out, secret
    assert "http://[REDACTED]@proxy.example:3128" in out
    assert "Bearer [REDACTED]" in out
    assert "numpy==1.26.4 version=3.11.7 GLIBCXX_3.4.30" in out
    assert r.counts["secret"] == 2 and r.counts["url"] == 1


def test_identity_home_user_host() -> None:
    r = redactor()
    out = r.text(f"{HOME}/venv/bin/python {HOME} /home/alice_qq/x by alice_q on gpu-node-17 (gpu-node-17.cluster.example)")
    assert out.startswith("~/venv/bin/python ~ ")
    assert "/home/alice_qq/x" in out  # another user's home, not a prefix match
    assert "alice_q " not in out and "gpu-node-17" not in out
    assert host_pseudonym("gpu-node-17") in out
    assert r.counts["home"] == 2 and r.counts["user"] == 1 and r.counts["host"] == 2


def test_keep_host_and_generic_users() -> None:
    r = Redactor.for_environment({**ENV, "USER": "root", "LOGNAME": "root"}, keep_host=True)
    out = r.text("running as root on gpu-node-17")
    assert out == "running as root on gpu-node-17"
    assert "kept" in r.summary()


def test_custom_patterns() -> None:
    r = redactor(patterns=[r"project-[a-z]+", r"10\.1\.\d+\.\d+"])
    out = r.text("project-zeus at 10.1.2.3 uses Python 3.11.7")
    assert out == "[REDACTED] at [REDACTED] uses Python 3.11.7"
    assert r.counts["custom"] == 2


def test_walk_redacts_keys_values_and_secret_named_fields() -> None:
    r = redactor()
    data = {
        "environment": {"HF_TOKEN": "anything-at-all", "PATH": f"{HOME}/bin:/usr/bin"},
        "nested": [{"path": f"{HOME}/x", "version": "3.11.7"}, 12, None, True],
        f"{HOME}/key-in-a-key": "v",
    }
    out = r.walk(data)
    assert out["environment"] == {"HF_TOKEN": REDACTED, "PATH": "~/bin:/usr/bin"}
    assert out["nested"] == [{"path": "~/x", "version": "3.11.7"}, 12, None, True]
    assert "~/key-in-a-key" in out


def test_summary_names_counts_per_kind() -> None:
    r = redactor()
    assert "nothing found" in r.summary()
    r.text(f"{HOME} {TOKENS['aws']} {TOKENS['hf']}")
    summary = r.summary()
    assert "2 tokens" in summary and "1 home directory path" in summary
    assert r.counts_json()["token"] == 2

"""Sharing a diagnosis beyond one shell: the host it was taken on (`host`), redaction of what
must not leave the machine (`redact`), the issue report (`report`) and the comparison of two
reports (`diff`)."""

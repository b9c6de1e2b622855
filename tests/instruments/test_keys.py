"""Key files: the signing key and the CURVE certificates, each read with a clear error."""

import pytest

from abduce.controller.errors import ConfigError
from abduce.instruments.keys import load_certificate, load_key, new_key


def test_a_curve_certificate_is_read_with_a_clear_error_for_anything_else(tmp_path):
    new_key(tmp_path / "lab.key", "lab", curve=True)
    public, secret = load_certificate(tmp_path / "lab.key.curve.key_secret")
    assert len(public) == len(secret) == 40  # Z85 of 32 bytes
    public_only, none = load_certificate(str(tmp_path / "lab.key.curve.key"))
    assert public_only == public and none is None
    assert load_certificate(None) is None
    with pytest.raises(ConfigError, match="does not exist"):
        load_certificate(tmp_path / "missing.key_secret")
    (tmp_path / "junk").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="is not a CURVE certificate"):
        load_certificate(tmp_path / "junk")
    assert load_key(tmp_path / "lab.key")[0] == "lab"

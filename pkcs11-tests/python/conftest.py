"""Fixtures for the python-pkcs11 interoperability suite.

python-pkcs11 loads a PKCS#11 module once per process, and ecm-hsm reads ECM_HSM_DIR when it
is initialized, so the whole test session shares one temporary token directory: the
environment is set up, the token initialized with pkcs11-tool (python-pkcs11 has no
C_InitToken), and only then is the module loaded. Each test gets its own logged-in R/W
session; keys made with the default ``store=False`` are session objects that vanish with it.

The module is $ECM_HSM_MODULE, else target/debug/libecm_hsm.so of this repository.
"""

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DEFAULT_MODULE = HERE / ".." / ".." / "target" / "debug" / "libecm_hsm.so"

TOKEN_LABEL = "ecm-pytest"
SO_PIN = "so-pin-1234"
USER_PIN = "user-pin-1"


def module_path() -> Path:
    return Path(os.environ.get("ECM_HSM_MODULE") or DEFAULT_MODULE).resolve()


@pytest.fixture(scope="session")
def module():
    path = module_path()
    if not path.is_file():
        pytest.exit(
            f"PKCS#11 module {path} not found: run `cargo build --lib` or set ECM_HSM_MODULE",
            returncode=3,
        )
    return str(path)


@pytest.fixture(scope="session")
def token_dir(tmp_path_factory):
    """A fresh ECM_HSM_DIR with a fast PIN KDF, set in the environment for the module."""
    path = tmp_path_factory.mktemp("ecm-hsm-tokens")
    settings = path / "ecm-hsm.toml"
    settings.write_text("test_settings = true\npin_kdf_iterations = 1000\n")
    settings.chmod(0o600)  # a settings file others may write is refused
    saved = {k: os.environ.get(k) for k in ("ECM_HSM_DIR", "ECM_HSM_CONF")}
    os.environ["ECM_HSM_DIR"] = str(path)
    os.environ.pop("ECM_HSM_CONF", None)  # the settings must come from the directory
    yield path
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def lib(module, token_dir):
    """The loaded module, after slot 0 got a token with a user PIN."""
    tool = shutil.which("pkcs11-tool")
    if tool is None:
        pytest.exit("pkcs11-tool (Debian package opensc) is needed to initialize the token",
                    returncode=3)
    subprocess.run(
        [tool, "--module", module, "--init-token", "--slot", "0",
         "--label", TOKEN_LABEL, "--so-pin", SO_PIN],
        check=True, capture_output=True, text=True,
    )

    import pkcs11  # imported late: nothing may load the module before ECM_HSM_DIR is set

    lib = pkcs11.lib(module)
    token = lib.get_token(token_label=TOKEN_LABEL)
    # The user PIN is set through python-pkcs11 (C_Login as SO, C_InitPIN).
    with token.open(rw=True, so_pin=SO_PIN) as so_session:
        so_session.init_pin(USER_PIN)
    yield lib
    lib.finalize()


@pytest.fixture(scope="session")
def token(lib):
    return lib.get_token(token_label=TOKEN_LABEL)


@pytest.fixture(scope="session")
def user_pin():
    return USER_PIN


@pytest.fixture
def session(token, user_pin):
    """A R/W session logged in as the user; closing it logs out."""
    with token.open(rw=True, user_pin=user_pin) as s:
        yield s


@pytest.fixture
def unique():
    """unique('name') -> a label no other test (or earlier run) uses."""
    return lambda name: f"{name}-{uuid.uuid4().hex[:12]}"

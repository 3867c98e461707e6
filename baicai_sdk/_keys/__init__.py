"""Keys: named profiles, where their secrets live, and which key and base URL a client ends up using.

Two files and one secret store:

* ``<config_dir>/profiles.json`` — the non-secret half of every profile (name, tier, base URL, masked key,
  fingerprint, which store holds the secret) and the active profile's name. Written atomically (temp file, fsync,
  rename) so a killed process never leaves half a file; a damaged file is reported, never silently replaced.
* the secret itself — in the OS keyring (service ``baicai``, user = profile name) by default. Headless Linux and CI
  machines often have no keyring backend; then we say so and name the explicit fallback,
  ``BAICAI_SECRET_STORE=file`` (or ``baicai key add --store file``): ``<config_dir>/secrets.json``, mode 0600.
  We never fall back to plain text on our own.

``resolve_credentials`` picks the key (argument > ``BAICAI_API_KEY`` > profile) and the base URL
(argument > ``BAICAI_BASE_URL`` > profile > default) and records where each came from, for ``baicai doctor`` and
for error messages. It touches the keyring only when the key has to come from a profile (keyring imports slowly
and may prompt for an unlock).

No full key ever leaves this module except through ``Profile.secret()`` and ``Credentials.key``: reprs, errors and
warnings use ``mask_key``.

One module per concern: ``errors`` (the exception tree, ``BaicaiConfigWarning``), ``masking`` (``mask_key``,
fingerprints, key warnings), ``configfile`` (locked, atomic JSON files in the config dir), ``stores`` (keyring and
the 0600 file), ``profiles`` (``Profile``, ``KeyStore``), ``resolution`` (``Credentials``, ``resolve_credentials``).
Everything is imported from ``baicai_sdk._keys`` (this package), as before the split.
"""

from __future__ import annotations

from .errors import (
    BaicaiConfigWarning,
    ConfigCorrupt,
    KeyStoreError,
    MissingKeyError,
    NoKeyringBackend,
    ProfileNotFound,
)
from .masking import _clean_key as _clean_key  # used by the CLI and tests beside the public names
from .masking import key_fingerprint, key_warnings, mask_key, trimmed_key
from .profiles import TIERS, KeyStore, Profile
from .profiles import _check_name as _check_name
from .profiles import _check_tier as _check_tier
from .resolution import Credentials, missing_key_message, resolve_credentials
from .stores import SECRET_STORE_ENV, SERVICE_NAME, StoreKind, keyring_in_words, keyring_status

__all__ = [
    "BaicaiConfigWarning",
    "ConfigCorrupt",
    "Credentials",
    "KeyStore",
    "KeyStoreError",
    "MissingKeyError",
    "NoKeyringBackend",
    "Profile",
    "ProfileNotFound",
    "SECRET_STORE_ENV",
    "SERVICE_NAME",
    "StoreKind",
    "TIERS",
    "key_fingerprint",
    "key_warnings",
    "keyring_in_words",
    "keyring_status",
    "mask_key",
    "missing_key_message",
    "resolve_credentials",
    "trimmed_key",
]

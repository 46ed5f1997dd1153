//! Electronic seals: the DSSE pre-authentication encoding and Ed25519 signatures.

//! Key layout of gongwen's records in the ordered key space, and their encoding (postcard).
//!
//! Every record family has its own prefix; composite keys separate parts with 0x00, which no id or name contains,
//! and put numbers in big-endian so key order is numeric order.
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{Store, StoreError, Tx};

/// The operator's public key (a `SealKey`).
pub const OPERATOR: &[u8] = b"meta/operator";
/// The record format of the store (u32 BE; see `app::format`).
pub const FORMAT: &[u8] = b"meta/format";
/// The last event sequence number (u64 BE).
pub const EVENT_SEQ: &[u8] = b"meta/event_seq";

/// A region by code.
pub fn region(code: &str) -> Vec<u8> {
    key(b"reg/region/", &[code.as_bytes()])
}
/// All regions.
pub const REGIONS: &[u8] = b"reg/region/";
/// A unit by id.
pub fn unit(id: &str) -> Vec<u8> {
    key(b"reg/unit/", &[id.as_bytes()])
}
/// All units.
pub const UNITS: &[u8] = b"reg/unit/";
/// A group by name.
pub fn group(name: &str) -> Vec<u8> {
    key(b"reg/group/", &[name.as_bytes()])
}
/// All groups.
pub const GROUPS: &[u8] = b"reg/group/";

/// An auditor grant (value empty).
pub fn auditor(unit: &str, region: &str) -> Vec<u8> {
    key(b"reg/auditor/", &[unit.as_bytes(), region.as_bytes()])
}
/// All auditor grants.
pub const AUDITORS: &[u8] = b"reg/auditor/";
/// A document that lists an attachment (value empty): who may download a file follows who may read these.
pub fn attachment_use(sha256: &str, document_id: &str) -> Vec<u8> {
    key(b"att/", &[sha256.as_bytes(), document_id.as_bytes()])
}
/// Every document that lists an attachment.
pub fn attachment_uses(sha256: &str) -> Vec<u8> {
    key(b"att/", &[sha256.as_bytes(), b""])
}
/// A unit that uploaded a file (value empty): the uploader may attach it, which knowing its hash does not allow.
pub fn uploaded(sha256: &str, unit: &str) -> Vec<u8> {
    key(b"upl/", &[sha256.as_bytes(), unit.as_bytes()])
}

/// An event by sequence number.
pub fn event(seq: u64) -> Vec<u8> {
    key(b"ev/", &[&seq.to_be_bytes()])
}
/// A registry event (value empty).
pub fn registry_event(seq: u64) -> Vec<u8> {
    key(b"evreg/", &[&seq.to_be_bytes()])
}
/// All registry events.
pub const REGISTRY_EVENTS: &[u8] = b"evreg/";
/// A Merkle node: the hash of the complete subtree `index` at `level`. Since format 3 only levels above
/// `log::COMPUTED_UP_TO` are stored, and leaves of long events (`log::node_from`); stores of older formats also hold
/// the lower levels, read as stored.
pub fn merkle_node(level: u32, index: u64) -> Vec<u8> {
    key(b"mt/", &[&level.to_be_bytes(), &index.to_be_bytes()])
}
/// The server's log signing key (32 secret bytes) and its id.
pub const LOG_KEY: &[u8] = b"meta/log_key";

/// A document by id.
pub fn document(id: &str) -> Vec<u8> {
    key(b"doc/", &[id.as_bytes()])
}
/// A document's small header (number, title, issuer): what delivery views need, without the recipient lists.
pub fn document_head(id: &str) -> Vec<u8> {
    key(b"dochead/", &[id.as_bytes()])
}
/// The last serial allocated for (prefix, year) (u32 BE).
pub fn serial(prefix: &str, year: u32) -> Vec<u8> {
    key(b"num/", &[prefix.as_bytes(), &year.to_be_bytes()])
}
/// The document holding number (prefix, year, serial).
pub fn numbered(prefix: &str, year: u32, serial: u32) -> Vec<u8> {
    key(b"numdoc/", &[prefix.as_bytes(), &year.to_be_bytes(), &serial.to_be_bytes()])
}
/// One delivery.
pub fn delivery(document_id: &str, recipient: &str) -> Vec<u8> {
    key(b"dlv/", &[document_id.as_bytes(), recipient.as_bytes()])
}
/// All deliveries of one document.
pub fn deliveries_of(document_id: &str) -> Vec<u8> {
    key(b"dlv/", &[document_id.as_bytes(), b""])
}
/// Inbox entry of a unit, ordered by the delivery event (value: document id).
pub fn inbox(unit: &str, seq: u64) -> Vec<u8> {
    key(b"inbox/", &[unit.as_bytes(), &seq.to_be_bytes()])
}
/// A unit's whole inbox.
pub fn inbox_of(unit: &str) -> Vec<u8> {
    key(b"inbox/", &[unit.as_bytes(), b""])
}
/// Issued-documents entry of a unit, ordered by the issue event (value: document id).
pub fn issued(unit: &str, seq: u64) -> Vec<u8> {
    key(b"issued/", &[unit.as_bytes(), &seq.to_be_bytes()])
}
/// Everything a unit issued.
pub fn issued_by(unit: &str) -> Vec<u8> {
    key(b"issued/", &[unit.as_bytes(), b""])
}
/// A forwarding link: `forward` forwards `source` (value: the forwarding unit).
pub fn forward(source: &str, forward: &str) -> Vec<u8> {
    key(b"fwd/", &[source.as_bytes(), forward.as_bytes()])
}
/// All forwards of a document.
pub fn forwards_of(source: &str) -> Vec<u8> {
    key(b"fwd/", &[source.as_bytes(), b""])
}
/// The groups the read cache keeps whole (see [`crate::store::ScanCache`]): a document's deliveries and its
/// forwards, what traces and status matrices walk. Returns the length of `key`'s group prefix.
pub fn cached_group(key: &[u8]) -> Option<usize> {
    [&b"dlv/"[..], b"fwd/"].into_iter().find_map(|family| {
        let rest = key.strip_prefix(family)?;
        Some(family.len() + rest.iter().position(|b| *b == 0)? + 1)
    })
}
/// The first result of a request id of one actor.
pub fn request(actor: &str, request_id: &str) -> Vec<u8> {
    key(b"req/", &[actor.as_bytes(), request_id.as_bytes()])
}

fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

/// The last part of a composite key (after the last 0x00), as text.
pub fn last_part(key: &[u8]) -> String {
    let tail = key.rsplit(|b| *b == 0).next().unwrap_or(key);
    String::from_utf8_lossy(tail).into_owned()
}

/// Encodes a record.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Backend(format!("cannot encode record: {e}")))
}

/// Decodes a record read at `key`.
pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    decode_borrowed(key, bytes)
}

/// Decodes a record read at `key` into a type that borrows from `bytes`.
pub fn decode_borrowed<'a, T: serde::Deserialize<'a>>(key: &[u8], bytes: &'a [u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes)
        .map_err(|e| StoreError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), reason: e.to_string() })
}

/// Reads and decodes a committed record.
pub fn load<T: DeserializeOwned>(store: &dyn Store, key: &[u8]) -> Result<Option<T>, StoreError> {
    store.get(key)?.map(|v| decode(key, &v)).transpose()
}

/// Reads and decodes a record inside a transaction.
pub fn load_tx<T: DeserializeOwned>(tx: &dyn Tx, key: &[u8]) -> Result<Option<T>, StoreError> {
    tx.get(key)?.map(|v| decode(key, &v)).transpose()
}

/// Encodes and stages a record.
pub fn save<T: Serialize>(tx: &mut dyn Tx, key: &[u8], value: &T) -> Result<(), StoreError> {
    let bytes = encode(value)?;
    tx.put(key, &bytes);
    Ok(())
}

/// Reads a big-endian u64 counter inside a transaction (0 when absent).
pub fn load_u64(tx: &dyn Tx, key: &[u8]) -> Result<u64, StoreError> {
    match tx.get(key)? {
        None => Ok(0),
        Some(v) => {
            let arr: [u8; 8] = v.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                key: String::from_utf8_lossy(key).into_owned(),
                reason: "not an 8-byte counter".into(),
            })?;
            Ok(u64::from_be_bytes(arr))
        }
    }
}

/// Reads a big-endian u32 counter inside a transaction (0 when absent).
pub fn load_u32(tx: &dyn Tx, key: &[u8]) -> Result<u32, StoreError> {
    match tx.get(key)? {
        None => Ok(0),
        Some(v) => {
            let arr: [u8; 4] = v.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                key: String::from_utf8_lossy(key).into_owned(),
                reason: "not a 4-byte counter".into(),
            })?;
            Ok(u32::from_be_bytes(arr))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_sort_numerically_and_split() {
        assert!(event(2) < event(10));
        assert!(inbox("u", 255) < inbox("u", 256));
        assert!(inbox("u", 1).starts_with(&inbox_of("u")));
        assert!(!inbox("uv", 1).starts_with(&inbox_of("u")));
        assert_eq!(last_part(&delivery("d-1", "370304.czj")), "370304.czj");
    }
}

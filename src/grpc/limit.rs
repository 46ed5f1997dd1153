//! The request-message size limit, applied to every call in front of all services.
//!
//! tonic's own limit answers OUT_OF_RANGE and is set per service; checking the gRPC frame headers as the body
//! streams in gives one limit for unary calls, public calls, upload chunks and reflection alike, refused with
//! RESOURCE_EXHAUSTED as soon as a too-large message announces its length, before its bytes are buffered.
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;

/// Length of a gRPC message prefix: a compression flag and a big-endian u32 length.
const PREFIX: usize = 5;

/// Follows the gRPC message framing of a byte stream, one piece at a time.
#[derive(Debug, Default)]
struct Framing {
    prefix: [u8; PREFIX],
    have: usize,
    remaining: u64,
}

impl Framing {
    /// Consumes `data`; the length of the first message larger than `limit`, if one starts in it.
    fn feed(&mut self, mut data: &[u8], limit: usize) -> Option<u64> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(data.len());
                self.remaining -= n as u64;
                data = &data[n..];
                continue;
            }
            let n = (PREFIX - self.have).min(data.len());
            self.prefix[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == PREFIX {
                self.have = 0;
                let len =
                    u64::from(u32::from_be_bytes([self.prefix[1], self.prefix[2], self.prefix[3], self.prefix[4]]));
                if len > limit as u64 {
                    return Some(len);
                }
                self.remaining = len;
            }
        }
        None
    }
}

/// The status for a message of `len` bytes over `limit`.
pub fn too_large(len: Option<u64>, limit: usize) -> Status {
    let size = match len {
        Some(n) => format!("a request message of {n} bytes"),
        None => "the request".to_owned(),
    };
    Status::resource_exhausted(format!(
        "{size} is larger than this server's limit of {limit} bytes per message (max_message_mb); \
         send attachments in smaller upload chunks"
    ))
}

/// A request body that fails with RESOURCE_EXHAUSTED when a message in it is larger than the limit.
pub struct MessageLimit {
    inner: tonic::body::Body,
    framing: Framing,
    limit: usize,
    failed: bool,
}

impl MessageLimit {
    /// `inner`, checked against `limit` bytes per message.
    pub fn new(inner: tonic::body::Body, limit: usize) -> MessageLimit {
        MessageLimit { inner, framing: Framing::default(), limit, failed: false }
    }
}

impl Body for MessageLimit {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let limit = self.limit;
        if let Some(data) = frame.data_ref()
            && let Some(len) = self.framing.feed(data, limit)
        {
            // tonic passes a body error that is a Status on to the caller unchanged.
            self.failed = true;
            return Poll::Ready(Some(Err(too_large(Some(len), limit))));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u32) -> Vec<u8> {
        let mut m = vec![0u8];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend(std::iter::repeat_n(7u8, len as usize));
        m
    }

    #[test]
    fn messages_within_the_limit_pass_in_any_split() {
        let stream: Vec<u8> = [message(10), message(0), message(100)].concat();
        for piece in [1, 2, 4, 5, 6, 17, 1000] {
            let mut f = Framing::default();
            assert!(stream.chunks(piece).all(|c| f.feed(c, 100).is_none()), "pieces of {piece}");
        }
    }

    #[test]
    fn an_oversized_message_is_caught_at_its_prefix_even_when_split() {
        let stream: Vec<u8> = [message(10), message(101)].concat();
        for piece in [1, 3, 15, 16, 1000] {
            let mut f = Framing::default();
            // The prefix ends at byte 15 + 5 = 20: the error comes no later than the piece that completes it.
            let caught = stream.chunks(piece).take(20usize.div_ceil(piece)).find_map(|c| f.feed(c, 100));
            assert_eq!(caught, Some(101), "pieces of {piece}");
        }
    }
}

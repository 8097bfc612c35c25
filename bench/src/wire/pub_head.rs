//! `PubHead`: a shardbus PUB frame's head, encoded once for a subject and payload length and
//! copied for every publish after. A run publishes one subject at one size, and encoding and
//! validating the head per message was an eighth of the tool's CPU (perf/RESULTS.md). The
//! shardbus wire and the null wire (the tool's own ceiling) share it, so the ceiling measures
//! the same encoding the real runs do.

use std::io;

use shardbus_protocol::{Fields, Flags, Head, encode_head};

/// The last PUB head encoded, and what it was for.
#[derive(Debug)]
pub struct PubHead {
    bytes: Vec<u8>,
    subject: Vec<u8>,
    len: usize,
}

impl Default for PubHead {
    fn default() -> PubHead {
        PubHead {
            bytes: Vec::new(),
            subject: Vec::new(),
            // No payload has this length: the first publish always encodes.
            len: usize::MAX,
        }
    }
}

impl PubHead {
    /// Appends a PUB of `payload` on `subject` to `out`.
    pub fn append(&mut self, subject: &str, payload: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        if self.subject != subject.as_bytes() || self.len != payload.len() {
            let head = Head {
                fields: Fields::Pub,
                flags: Flags::empty(),
                op_id: 0,
                topic: subject.as_bytes(),
                headers: &[],
            };
            self.bytes.clear();
            encode_head(&head, payload.len(), &mut self.bytes).map_err(io::Error::other)?;
            self.subject = subject.as_bytes().to_vec();
            self.len = payload.len();
        }
        out.extend_from_slice(&self.bytes);
        out.extend_from_slice(payload);
        Ok(())
    }
}

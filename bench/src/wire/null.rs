//! `NullWire`: encodes publishes as shardbus frames and drops them, so a run against it shows
//! what the load generator itself can do.

use std::io;

use shardbus_protocol::{Fields, Flags, Head, encode_head};

use super::{Event, ReplyTo, Wire};

/// A connection to nowhere.
#[derive(Debug, Default)]
pub struct NullWire {
    out: Vec<u8>,
}

impl Wire for NullWire {
    fn subscribe(&mut self, _: &str, _: Option<&str>) -> io::Result<()> {
        Ok(())
    }

    fn publish(&mut self, subject: &str, payload: &[u8]) -> io::Result<()> {
        let head = Head {
            fields: Fields::Pub,
            flags: Flags::empty(),
            op_id: 0,
            topic: subject.as_bytes(),
            headers: &[],
        };
        encode_head(&head, payload.len(), &mut self.out).map_err(io::Error::other)?;
        self.out.extend_from_slice(payload);
        Ok(())
    }

    fn request(&mut self, subject: &str, payload: &[u8]) -> io::Result<()> {
        self.publish(subject, payload)
    }

    fn reply(&mut self, _: &ReplyTo, _: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        std::hint::black_box(&self.out);
        self.out.clear();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn receive(&mut self, _: &mut dyn FnMut(Event<'_>)) -> io::Result<usize> {
        Ok(0)
    }
}

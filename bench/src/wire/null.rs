//! `NullWire`: encodes publishes as shardbus frames and drops them, so a run against it shows
//! what the load generator itself can do.

use std::io;

use super::pub_head::PubHead;
use super::{Event, ReplyTo, Wire};

/// A connection to nowhere.
#[derive(Debug, Default)]
pub struct NullWire {
    out: Vec<u8>,
    pub_head: PubHead,
}

impl Wire for NullWire {
    fn subscribe(&mut self, _: &str, _: Option<&str>) -> io::Result<()> {
        Ok(())
    }

    fn publish(&mut self, subject: &str, payload: &[u8]) -> io::Result<()> {
        self.pub_head.append(subject, payload, &mut self.out)
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

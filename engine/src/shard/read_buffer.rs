//! `ReadBuffer`: input bytes decoded in place from `unread()`. Each shard reads every
//! connection's input into one scratch `ReadBuffer` (`SCRATCH_SIZE`), so ten thousand idle
//! devices hold no input buffer at all; a connection keeps its own only for the start of a
//! frame that has not all arrived, sized to that frame (already checked against `max_frame` by
//! the decoder before any of it is buffered).

/// The shard's scratch buffer: the most one read takes.
pub(crate) const SCRATCH_SIZE: usize = 64 << 10;

/// Bytes read and not yet consumed.
#[derive(Debug, Default)]
pub(crate) struct ReadBuffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuffer {
    /// A buffer of `capacity` bytes (0 allocates nothing until the first read).
    pub(crate) fn new(capacity: usize) -> ReadBuffer {
        ReadBuffer {
            data: vec![0; capacity],
            start: 0,
            end: 0,
        }
    }

    /// The bytes read and not yet consumed.
    pub(crate) fn unread(&self) -> &[u8] {
        self.data.get(self.start..self.end).unwrap_or_default()
    }

    /// Marks `n` bytes of `unread()` as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.clear();
        }
    }

    /// Forgets every unread byte (the memory stays).
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Room to read into, big enough that `unread()` can reach `want` bytes.
    pub(crate) fn spare(&mut self, want: usize) -> &mut [u8] {
        if self.data.len() - self.start < want || self.end == self.data.len() {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let need = want.max(self.end + 1);
        if self.data.len() < need {
            self.data.resize(need, 0);
        }
        self.data.get_mut(self.end..).unwrap_or_default()
    }

    /// Records that `n` bytes were read into `spare()`.
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
    }

    /// Appends `bytes` to `unread()`.
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        let len = bytes.len();
        if let Some(room) = self.spare(self.unread().len() + len).get_mut(..len) {
            room.copy_from_slice(bytes);
            self.filled(len);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    fn read(buf: &mut ReadBuffer, bytes: &[u8], want: usize) -> usize {
        let spare = buf.spare(want);
        let n = bytes.len().min(spare.len());
        spare[..n].copy_from_slice(&bytes[..n]);
        buf.filled(n);
        n
    }

    #[test]
    fn an_empty_buffer_allocates_nothing_and_grows_to_what_is_wanted() {
        let mut buf = ReadBuffer::new(0);
        assert_eq!(buf.data.capacity(), 0);
        buf.append(b"abc");
        assert_eq!(buf.unread(), b"abc");
        assert_eq!(
            read(&mut buf, b"defgh", 5),
            2,
            "room up to the wanted length"
        );
        assert_eq!(buf.unread(), b"abcde");
        buf.consume(5);
        assert!(buf.unread().is_empty());
    }

    #[test]
    fn a_frame_larger_than_the_buffer_gets_room_for_all_of_it_and_bytes_stay_in_order() {
        let mut buf = ReadBuffer::new(512);
        let frame: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut at = read(&mut buf, &frame[..300], 512);
        buf.consume(100);
        while at < frame.len() {
            at += read(&mut buf, &frame[at..], frame.len() - 100);
        }
        assert_eq!(buf.unread(), &frame[100..]);
    }

    #[test]
    fn appending_after_a_partial_consume_keeps_the_order() {
        let mut buf = ReadBuffer::new(8);
        buf.append(b"0123456");
        buf.consume(4);
        buf.append(b"789");
        assert_eq!(buf.unread(), b"456789");
    }
}

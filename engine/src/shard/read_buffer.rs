//! `ReadBuffer`: a session's input bytes. Frames are decoded in place from `unread()`; a frame
//! larger than the buffer grows it to exactly that frame's size (already checked against
//! `max_frame` by the decoder before any of it is buffered). It starts small, so ten thousand
//! idle devices cost little, and doubles (up to `BUSY_SIZE`) whenever a read fills it, so a
//! busy publisher soon reads in large chunks.

/// The size a buffer grows to by doubling when reads keep filling it.
const BUSY_SIZE: usize = 64 << 10;

/// Bytes read from a socket and not yet consumed.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuffer {
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
            self.start = 0;
            self.end = 0;
        }
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

    /// Records that `n` bytes were read into `spare()`; a read that filled all the room there
    /// was doubles the buffer for the next one.
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
        if self.end == self.data.len() && self.data.len() < BUSY_SIZE {
            let grown = (self.data.len() * 2).min(BUSY_SIZE);
            self.data.resize(grown, 0);
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
    fn reads_that_fill_the_buffer_double_it_up_to_the_busy_size() {
        let mut buf = ReadBuffer::new(512);
        let chunk = vec![7u8; 1 << 20];
        let mut sizes = Vec::new();
        for _ in 0..10 {
            sizes.push(read(&mut buf, &chunk, 1));
            let all = buf.unread().len();
            buf.consume(all);
        }
        assert_eq!(sizes[..5], [512, 1024, 2048, 4096, 8192]);
        assert_eq!(*sizes.last().unwrap(), BUSY_SIZE);
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
}

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

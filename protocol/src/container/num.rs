//! Numeric element kinds and owned typed arrays.

/// The numeric types a typed array can hold, with their wire tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NumKind {
    /// `i8`
    I8 = 0x03,
    /// `i16`
    I16 = 0x04,
    /// `i32`
    I32 = 0x05,
    /// `i64`
    I64 = 0x06,
    /// `u8`
    U8 = 0x07,
    /// `u16`
    U16 = 0x08,
    /// `u32`
    U32 = 0x09,
    /// `u64`
    U64 = 0x0A,
    /// `f32`
    F32 = 0x0B,
    /// `f64`
    F64 = 0x0C,
}

impl NumKind {
    /// Every kind, in tag order.
    pub const ALL: [NumKind; 10] = [
        NumKind::I8,
        NumKind::I16,
        NumKind::I32,
        NumKind::I64,
        NumKind::U8,
        NumKind::U16,
        NumKind::U32,
        NumKind::U64,
        NumKind::F32,
        NumKind::F64,
    ];

    /// The kind with this tag.
    pub fn from_tag(tag: u8) -> Option<NumKind> {
        NumKind::ALL.into_iter().find(|k| *k as u8 == tag)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NumKind::I8 | NumKind::U8 => 1,
            NumKind::I16 | NumKind::U16 => 2,
            NumKind::I32 | NumKind::U32 | NumKind::F32 => 4,
            NumKind::I64 | NumKind::U64 | NumKind::F64 => 8,
        }
    }
}

/// An owned typed numeric array.
#[derive(Debug, Clone, PartialEq)]
pub enum NumVec {
    /// `i8` elements.
    I8(Vec<i8>),
    /// `i16` elements.
    I16(Vec<i16>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `i64` elements.
    I64(Vec<i64>),
    /// `u8` elements.
    U8(Vec<u8>),
    /// `u16` elements.
    U16(Vec<u16>),
    /// `u32` elements.
    U32(Vec<u32>),
    /// `u64` elements.
    U64(Vec<u64>),
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
}

macro_rules! each_num_vec {
    ($v:expr, $x:ident => $body:expr) => {
        match $v {
            NumVec::I8($x) => $body,
            NumVec::I16($x) => $body,
            NumVec::I32($x) => $body,
            NumVec::I64($x) => $body,
            NumVec::U8($x) => $body,
            NumVec::U16($x) => $body,
            NumVec::U32($x) => $body,
            NumVec::U64($x) => $body,
            NumVec::F32($x) => $body,
            NumVec::F64($x) => $body,
        }
    };
}
pub(crate) use each_num_vec;

impl NumVec {
    /// The element kind.
    pub fn kind(&self) -> NumKind {
        match self {
            NumVec::I8(_) => NumKind::I8,
            NumVec::I16(_) => NumKind::I16,
            NumVec::I32(_) => NumKind::I32,
            NumVec::I64(_) => NumKind::I64,
            NumVec::U8(_) => NumKind::U8,
            NumVec::U16(_) => NumKind::U16,
            NumVec::U32(_) => NumKind::U32,
            NumVec::U64(_) => NumKind::U64,
            NumVec::F32(_) => NumKind::F32,
            NumVec::F64(_) => NumKind::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        each_num_vec!(self, v => v.len())
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the elements in little-endian wire form.
    pub fn write_le(&self, out: &mut Vec<u8>) {
        each_num_vec!(self, v => {
            for x in v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        })
    }
}

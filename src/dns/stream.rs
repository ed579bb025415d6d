//! The input side of a DNS-over-TCP connection (RFC 1035 §4.2.2, RFC 7766): a fixed buffer
//! that takes whatever the socket has and hands out the complete, length-prefixed queries in
//! it, keeping a partial one for the next read. Pure: no I/O, so framing is tested byte by
//! byte.

/// Largest DNS message on a stream, with its two-byte length prefix.
pub const MAX_FRAME: usize = 2 + 65535;
/// Room for one largest frame plus a batch of small ones read together.
const CAPACITY: usize = MAX_FRAME + 16 * 1024;

/// What the buffer holds next.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One complete query (without its length prefix).
    Query(&'a [u8]),
    /// More bytes are needed.
    Incomplete,
    /// A zero length prefix: the client is done (no DNS message is empty).
    Close,
}

/// Received bytes not yet answered.
pub struct StreamBuffer {
    buf: Box<[u8]>,
    /// First unconsumed byte.
    start: usize,
    /// One past the last received byte.
    end: usize,
}

impl Default for StreamBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        StreamBuffer {
            buf: vec![0u8; CAPACITY].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Where the next read goes: never empty, because a partial frame is moved to the front
    /// whenever the room behind it could not hold the rest of a largest frame.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.start < MAX_FRAME {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Records that a read put `n` bytes into [`Self::spare`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Takes the next complete frame, if any.
    pub fn next_frame(&mut self) -> Frame<'_> {
        let have = &self.buf[self.start..self.end];
        if have.len() < 2 {
            return Frame::Incomplete;
        }
        let len = u16::from_be_bytes([have[0], have[1]]) as usize;
        if len == 0 {
            return Frame::Close;
        }
        if have.len() < 2 + len {
            return Frame::Incomplete;
        }
        let at = self.start + 2;
        self.start += 2 + len;
        Frame::Query(&self.buf[at..at + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(msgs: &[Vec<u8>]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&(m.len() as u16).to_be_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    /// Feeds `bytes` in reads of the given sizes and collects every frame.
    fn feed(bytes: &[u8], chunks: &[usize]) -> (Vec<Vec<u8>>, bool) {
        let mut b = StreamBuffer::new();
        let mut got = Vec::new();
        let mut at = 0;
        let mut chunk = chunks.iter().cycle();
        while at < bytes.len() {
            let spare = b.spare();
            assert!(!spare.is_empty());
            let n = (*chunk.next().unwrap())
                .max(1)
                .min(spare.len())
                .min(bytes.len() - at);
            spare[..n].copy_from_slice(&bytes[at..at + n]);
            b.filled(n);
            at += n;
            loop {
                match b.next_frame() {
                    Frame::Query(q) => got.push(q.to_vec()),
                    Frame::Incomplete => break,
                    Frame::Close => return (got, true),
                }
            }
        }
        (got, false)
    }

    #[test]
    fn pipelined_queries_come_out_in_order() {
        let msgs: Vec<Vec<u8>> = (0..500u16).map(|i| i.to_be_bytes().repeat(20)).collect();
        let (got, closed) = feed(&framed(&msgs), &[65536]);
        assert_eq!(got, msgs);
        assert!(!closed);
    }

    #[test]
    fn byte_by_byte_and_largest_frames() {
        let msgs = vec![vec![7u8; 65535], vec![1, 2, 3], vec![9u8; 65535]];
        assert_eq!(feed(&framed(&msgs), &[1]).0, msgs);
        assert_eq!(feed(&framed(&msgs), &[40_000, 3, 70_000]).0, msgs);
    }

    #[test]
    fn zero_length_closes_after_the_queries_before_it() {
        let mut bytes = framed(&[vec![1, 2], vec![3]]);
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&framed(&[vec![4]]));
        assert_eq!(feed(&bytes, &[3]), (vec![vec![1, 2], vec![3]], true));
    }

    proptest! {
        /// Any messages, cut into any reads, come out whole and in order.
        #[test]
        fn any_split_gives_the_same_frames(
            msgs in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 1..3000), 0..40),
            chunks in proptest::collection::vec(1usize..70_000, 1..8),
        ) {
            let (got, closed) = feed(&framed(&msgs), &chunks);
            prop_assert!(!closed);
            prop_assert_eq!(got, msgs);
        }
    }
}

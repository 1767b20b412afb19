//! A batch's encoded messages in one buffer: a stream writes it as it is, a datagram socket
//! sends it message by message.
//!
//! One buffer rather than a vector per message (issue 10, memory): a batch of 4,096 events is
//! about 4 MB in one allocation, where it was 4,096 small vectors and, for streams, a
//! concatenated copy of them made for the write.

/// Messages, back to back, and where each ends.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Frames {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Frames {
    /// Empty, with room for `messages` messages of about `bytes_each` bytes.
    pub(crate) fn with_capacity(messages: usize, bytes_each: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(messages.saturating_mul(bytes_each)),
            ends: Vec::with_capacity(messages),
        }
    }

    /// Appends one message.
    pub(crate) fn push(&mut self, message: &[u8]) {
        self.bytes.extend_from_slice(message);
        self.ends.push(self.bytes.len());
    }

    /// How many messages.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// True without messages.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Every message, concatenated (what a stream writes).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Each message, in order (what a datagram socket sends).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .filter_map(|(start, end)| self.bytes.get(start..end))
    }
}

#[cfg(test)]
impl<'a> FromIterator<&'a [u8]> for Frames {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(messages: I) -> Self {
        let mut frames = Frames::default();
        for message in messages {
            frames.push(message);
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_back_as_pushed_and_concatenated() {
        let frames: Frames = [&b"one\n"[..], b"", b"three\n"].into_iter().collect();
        assert_eq!(frames.len(), 3);
        assert!(!frames.is_empty());
        let messages: Vec<&[u8]> = frames.iter().collect();
        assert_eq!(messages, [&b"one\n"[..], b"", b"three\n"]);
        assert_eq!(frames.as_bytes(), b"one\nthree\n");
        assert!(Frames::default().iter().next().is_none());
    }
}

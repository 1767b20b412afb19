//! The request pools of a tenant scan: directory, Exchange and the identity reports bucket.
//! Each has its own concurrency, retry budget and throttling brake in [`super::client`].

/// Which concurrency pool a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// Directory (identity) endpoints.
    Directory,
    /// Exchange (mailbox) endpoints: calendars and inbox rules.
    Exchange,
    /// The identity reports bucket: the registration report and, as Microsoft's throttling
    /// page lists `authenticationMethod` there, per-user authentication-method reads. Shares
    /// the directory concurrency and is paced by the tenant's reports [`Pacer`].
    Reports,
}

impl Pool {
    /// Every pool, in the order of [`Pool::index`].
    pub const ALL: [Pool; 3] = [Pool::Directory, Pool::Exchange, Pool::Reports];

    /// The metrics label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Directory => "directory",
            Self::Exchange => "exchange",
            Self::Reports => "reports",
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            Self::Directory => 0,
            Self::Exchange => 1,
            Self::Reports => 2,
        }
    }
}

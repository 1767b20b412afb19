//! The directory listing as the method reads see it while it is paged: every listed user id,
//! handed from the user pager to the registration side, and whether the listing completed.
//!
//! The registration report is refreshed asynchronously, so it may still list a user the
//! directory no longer has; reading them would cost a reports-bucket request each scan for a
//! 404 whose answer the merge discards (stored reads of unlisted users are forgotten). So a row
//! of a user the sweep does not know waits here for the listing to name them
//! (`registration::MethodReads`). And when the listing fails, the scan's method reads are not
//! stored, so reads still waiting for it are not sent.

use crate::snapshot::UserId;
use futures::channel::mpsc;
use futures::StreamExt;
use std::collections::HashSet;

/// What the pager hands over.
enum Listing {
    User(UserId),
    /// Every user is listed.
    Complete,
}

/// The pager's side.
pub(crate) struct ListingFeed(mpsc::UnboundedSender<Listing>);

impl ListingFeed {
    /// Records a listed user.
    pub(crate) fn user_listed(&self, id: &UserId) {
        // A closed receiver means the registration side has finished; nothing is lost.
        let _ = self.0.unbounded_send(Listing::User(id.clone()));
    }

    /// Records that the listing is complete. A feed dropped without it is a failed listing.
    pub(crate) fn complete(&self) {
        let _ = self.0.unbounded_send(Listing::Complete);
    }
}

/// The registration side: the users listed so far.
pub(crate) struct ListedUsers {
    feed: mpsc::UnboundedReceiver<Listing>,
    seen: HashSet<UserId>,
    complete: bool,
}

/// A feed and the listed users it fills.
pub(crate) fn listing() -> (ListingFeed, ListedUsers) {
    let (tx, rx) = mpsc::unbounded();
    let listed = ListedUsers {
        feed: rx,
        seen: HashSet::new(),
        complete: false,
    };
    (ListingFeed(tx), listed)
}

impl ListedUsers {
    /// Takes in the users listed since the last call, without waiting.
    pub(crate) fn catch_up(&mut self) {
        while let Ok(listing) = self.feed.try_recv() {
            self.record(listing);
        }
    }

    /// The next listed user not yet taken in, waiting for the pager; `None` once the listing
    /// has ended (completed or failed).
    pub(crate) async fn next_new(&mut self) -> Option<UserId> {
        if self.complete {
            return None;
        }
        match self.feed.next().await? {
            Listing::User(id) => {
                self.seen.insert(id.clone());
                Some(id)
            }
            Listing::Complete => {
                self.complete = true;
                None
            }
        }
    }

    /// Waits for the listing to end (the pager's word, not the end of its other work); true
    /// when it completed.
    pub(crate) async fn finish(&mut self) -> bool {
        while self.next_new().await.is_some() {}
        self.complete
    }

    /// The listed user `id`, if listed so far.
    pub(crate) fn get(&self, id: &str) -> Option<&UserId> {
        self.seen.get(id)
    }

    /// The users listed so far.
    pub(crate) fn seen(&self) -> impl Iterator<Item = &UserId> {
        self.seen.iter()
    }

    fn record(&mut self, listing: Listing) {
        match listing {
            Listing::User(id) => {
                self.seen.insert(id);
            }
            Listing::Complete => self.complete = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> UserId {
        UserId::from(s)
    }

    #[tokio::test]
    async fn a_listing_dropped_without_completing_is_a_failed_listing() {
        let (feed, mut listed) = listing();
        feed.user_listed(&id("a"));
        drop(feed);
        assert!(!listed.finish().await);
        assert!(listed.get("a").is_some());
    }

    #[tokio::test]
    async fn users_are_seen_as_they_are_listed_and_the_end_is_known() {
        let (feed, mut listed) = listing();
        feed.user_listed(&id("a"));
        listed.catch_up();
        assert!(listed.get("a").is_some() && listed.get("b").is_none());
        feed.user_listed(&id("b"));
        assert_eq!(listed.next_new().await.as_deref(), Some("b"));
        feed.complete();
        // The pager is still queueing mailbox reads: its word that the listing is complete
        // is enough, the feed need not be dropped.
        assert!(listed.finish().await);
        assert_eq!(listed.seen().count(), 2);
        drop(feed);
    }
}
